-- A lean write path (issue 19): every fact is stored once.
--
-- The archived raw message (messages.raw) is the copy of record of everything a sender reported.
-- Tables keep, as columns, what the registry queries, matches, indexes or merges on; everything
-- else (the full PID/PD1, next of kin, observations, the full ORC/RXA/RXR) is read back from the
-- archive when someone asks (store.PatientRecord decodes the referenced messages again with
-- ingest.DecodeArchived). Report history becomes references kept on the row the writer writes
-- anyway, instead of a JSON copy per report in tables of their own:
--   patients.report_messages      every message that reported this sender patient, in order
--                                 (the last one is the current report: last_message_id before);
--   vaccinations.report_messages  every message that reported this vaccination, in order (the
--                                 first and last were first_/last_message_id before), and
--   vaccinations.report_groups    beside each, the 1-based order group (ORC/RXA) of the message
--                                 that is about this vaccination (ingest.Order.Group).
-- Observations about a dose are those of its order group in its latest report; patient-level
-- observations and next of kin those of the patient's latest report.

-- The fallback character set (hl7.Message.SetFallback) that decoded bytes of this message that
-- were not valid in its declared (or default) character set; NULL when none was needed. Reading
-- the message again with it gives back exactly what was decoded when it was accepted.
ALTER TABLE messages ADD COLUMN charset text;

-- Messages accepted before this column existed: an accepted message with bytes that are not
-- valid UTF-8 was read with the fallback (a message in a declared single-byte character set is
-- read with its own, whatever charset says). The deployment default (validate.DefaultCharset) is
-- the best knowledge there is of which fallback that was.
CREATE FUNCTION pg_temp.valid_utf8(b bytea) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM convert_from(b, 'UTF8');
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    RETURN false;
END $$;
UPDATE messages SET charset = 'windows-1252'
WHERE resend_key AND ack_code <> 'AR'
  AND encode(raw, 'escape') ~ '\\[23][0-7][0-7]'   -- a byte of 0x80 or more, before the slow check
  AND NOT pg_temp.valid_utf8(raw);

-- Sender patients: the reports as references.
ALTER TABLE patients ADD COLUMN report_messages bigint[] NOT NULL DEFAULT '{}';
UPDATE patients p SET report_messages = coalesce(
    (SELECT array_agg(r.message_id ORDER BY r.id) FROM patient_reports r WHERE r.patient_id = p.id),
    CASE WHEN p.last_message_id IS NOT NULL THEN ARRAY[p.last_message_id] ELSE '{}' END);
-- A report of the latest message that patient_reports did not list (rows written by hand).
UPDATE patients SET report_messages = report_messages || last_message_id
WHERE last_message_id IS NOT NULL AND report_messages[cardinality(report_messages)] IS DISTINCT FROM last_message_id;

-- Vaccinations: the reports as references, with their order group.
ALTER TABLE vaccinations
    ADD COLUMN report_messages bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN report_groups int2[] NOT NULL DEFAULT '{}';
UPDATE vaccinations v SET report_messages = r.msgs, report_groups = r.groups
FROM (
    SELECT vaccination_id,
           array_agg(message_id ORDER BY id) AS msgs,
           array_agg(coalesce((details->>'group')::int, 0)::int2 ORDER BY id) AS groups
    FROM vaccination_reports GROUP BY vaccination_id
) r
WHERE r.vaccination_id = v.id;
-- Vaccinations without report rows (written by hand): their first and last messages, with the
-- group their details named.
UPDATE vaccinations SET
    report_messages = CASE WHEN first_message_id = last_message_id THEN ARRAY[last_message_id]
                           ELSE ARRAY[first_message_id, last_message_id] END,
    report_groups = CASE WHEN first_message_id = last_message_id THEN ARRAY[coalesce((details->>'group')::int, 0)::int2]
                         ELSE ARRAY[0::int2, coalesce((details->>'group')::int, 0)::int2] END
WHERE cardinality(report_messages) = 0;
UPDATE vaccinations SET
    report_messages = report_messages || last_message_id,
    report_groups = report_groups || coalesce((details->>'group')::int, 0)::int2
WHERE report_messages[cardinality(report_messages)] IS DISTINCT FROM last_message_id;

-- The copies go: each was decoded from a message that stays archived and is referenced above.
ALTER TABLE patients DROP COLUMN demographics, DROP COLUMN last_message_id;
ALTER TABLE vaccinations DROP COLUMN details, DROP COLUMN first_message_id, DROP COLUMN last_message_id;
DROP TABLE observations, next_of_kin, vaccination_reports, patient_reports;

-- Foreign keys of the rows intake writes. The batched writer (store/writer.go) is the only writer
-- of messages, patients, registry_patients, vaccinations, and of the registry's sharing_changes
-- and registry_reviews rows made by intake, and it sets every reference from a row it read (and
-- locked) or created in the same transaction: the archive row, the sender's site, credential and
-- organization (from the authenticated sender), the sender patient and registry patient, the
-- vaccination a report merges into. Rows of these tables are never deleted. A foreign key check
-- there proves nothing the writer does not already know, and costs, per referencing row, an index
-- look-up and a row lock on the parent (a heap write, and lock contention on the site and
-- credential rows every concurrent batch shares). They go; the foreign keys among the admin tables
-- (users, sessions, invitations, memberships, audit, and the user references of sharing_changes
-- and registry_reviews, which the admin module writes) stay.
DO $$
DECLARE c record;
BEGIN
    FOR c IN
        SELECT con.conname, con.conrelid::regclass AS tbl
        FROM pg_constraint con
        WHERE con.contype = 'f'
          AND con.conrelid IN ('messages'::regclass, 'patients'::regclass, 'registry_patients'::regclass,
                               'vaccinations'::regclass, 'sharing_changes'::regclass, 'registry_reviews'::regclass)
          AND con.confrelid IN ('messages'::regclass, 'sites'::regclass, 'sender_credentials'::regclass,
                                'organizations'::regclass, 'patients'::regclass, 'registry_patients'::regclass,
                                'vaccinations'::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.tbl, c.conname);
    END LOOP;
END $$;

-- Indexes nothing reads any more.
-- messages (received_at): every query of the archive by time names the site. And one index by site
-- and time is enough: the portal's intake page (store.SiteIntake) reads a site's messages of each
-- environment (P, T, and null: rejected before it was known) through the reports' index,
-- messages_site_env_received (site_id, env, received_at, id), instead of messages_site_received.
DROP INDEX messages_received;
DROP INDEX messages_site_received;
-- vaccinations (patient_id, cvx, administered_on) and the dose index of 004: the writer's prefetch
-- reads every vaccination of the batch's registry patients (vaccinations_registry_patient) and
-- finds the sender's earlier reports and the reports of a dose among them in Go (package
-- registry), where the merge of reports of a dose is now computed.
DROP INDEX vaccinations_patient;
DROP INDEX vaccinations_dose;
