-- Throughput of the batched writer (store/writer.go).
--
-- Merging reports of a dose (reconcileDose) runs after every stored dose and looks up the current
-- reports of one dose of one registry patient: with this index it reads them alone, instead of
-- every vaccination of the patient.
CREATE INDEX vaccinations_dose ON vaccinations (registry_patient_id, administered_on, dose_key)
    WHERE kind = 'dose' AND NOT deleted;
