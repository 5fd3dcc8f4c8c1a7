-- PostgreSQL's CPU per accepted VXU on the write path (issue 19). Storage parameters only: no
-- table is rewritten, no row changes.
--
-- HOT updates. Nearly every message updates its sender patient, its registry patient and the
-- vaccinations it reports again. When a sender reports a known patient again with the same
-- identity, name and birth date (the usual case), none of these updates changes an indexed
-- column (patients: the identity key, registry_patient_id, env/birth_date/match_family and
-- env/id_value; registry_patients: env/birth_date/lower(family_name); vaccinations:
-- env/organization_id/filler_order_id and registry_patient_id; a column set to the value it had
-- counts as unchanged), so each can be a heap-only tuple update (HOT: no new entry in any index,
-- the old version pruned without vacuum) when the new version fits on the same page. With
-- fillfactor 100 the pages are full and such an update is a non-HOT one that inserts into every
-- index of the table (5 for patients). Pages filled to 80% leave room for the new versions
-- between prunes (pg_stat_user_tables.n_tup_hot_upd; TestMigratePGStorage). An update that
-- changes the birth date or the family name stays non-HOT whatever the fillfactor (make bench's
-- traffic does that on most patient updates: each connection's generator gives a shared MRN its
-- own name and birth date).
-- Pages written before this migration keep no room: they benefit only once rewritten (VACUUM
-- FULL, pg_repack or CLUSTER, in a maintenance window), or as their rows move to new pages.
ALTER TABLE patients SET (fillfactor = 80);
ALTER TABLE registry_patients SET (fillfactor = 80);
ALTER TABLE vaccinations SET (fillfactor = 80);

-- The archive row: the raw message (about 1.2 kB from a typical EHR), its ACK and findings make
-- a row of 2 to 2.5 kB, over PostgreSQL's 2 kB TOAST threshold. Each such insert ran the toaster:
-- a pglz compression attempt of raw, then of the ACK and findings (HL7 rarely saves pglz's
-- required 25%, so most attempts were CPU for nothing), then raw moved out of line into the
-- TOAST table — a second heap tuple and a TOAST index entry, with their WAL, per message (a
-- database grown by make bench: 65% of messages had raw out of line). With the target at its
-- maximum (8160 bytes) a row under it is stored as it is, in line, uncompressed: no
-- compression attempt, no TOAST row. Larger messages (long histories) are still compressed and
-- moved out of line as before. Costs disk (three archive rows per 8 kB page instead of the
-- compressed or toasted share), saves CPU on every accepted message.
ALTER TABLE messages SET (toast_tuple_target = 8160);
