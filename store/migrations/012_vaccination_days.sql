-- The batch's read-ahead of vaccinations (issue 19). A batch reads, for each record, the doses of
-- its registry patient on the days its orders name (and the day of each vaccination an order
-- number names), not the registry patient's whole history: the registry matches a report to an
-- event by patient, vaccine and day and merges doses by registry patient, day and dose, so no
-- other row is ever read, and a child with thirty doses costs one probe per reported day instead
-- of thirty rows on every report.
--
-- The index on (registry_patient_id) becomes (registry_patient_id, administered_on): the same
-- number of entries, four bytes wider, and it still serves every look-up by registry patient
-- alone (the patient record view) as its leading column. Built in this migration's transaction:
-- writes to vaccinations wait for the build (seconds per million rows).
CREATE INDEX vaccinations_registry_day ON vaccinations (registry_patient_id, administered_on);
DROP INDEX vaccinations_registry_patient;
