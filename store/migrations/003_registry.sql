-- Registry semantics (SPEC §2.6): the evidence registry-level linking compares, the review queue for
-- what the deterministic rules must not decide alone, merging of reports of the same dose, and
-- resends keyed per environment.

-- Resend key per environment: a site that certified with MSH-11 T and then goes live with P often
-- restarts its control IDs; a production message must never be answered with a test ACK (or be
-- dropped as a resend of a test message).
DROP INDEX messages_resend;
CREATE UNIQUE INDEX messages_resend ON messages (site_id, env, control_id)
    WHERE resend_key AND site_id IS NOT NULL;

-- Normalised demographics for linking (store.matchName / matchStreet): case, diacritics, spaces
-- and punctuation removed, street abbreviations unified. Computed by vaxgate, not by SQL, so that
-- one function defines them; the backfill below approximates it for rows written before.
ALTER TABLE patients
    ADD COLUMN match_family text NOT NULL DEFAULT '',
    ADD COLUMN match_given  text NOT NULL DEFAULT '',
    ADD COLUMN match_mother text NOT NULL DEFAULT '',
    ADD COLUMN match_street text NOT NULL DEFAULT '';
UPDATE patients SET
    match_family = lower(regexp_replace(family_name, '[^[:alpha:]]', '', 'g')),
    match_given  = lower(regexp_replace(given_name, '[^[:alpha:]]', '', 'g')),
    match_mother = lower(regexp_replace(mother_maiden, '[^[:alpha:]]', '', 'g'));
-- Linking blocks on the exact birth date and the normalised family name.
CREATE INDEX patients_match ON patients (env, birth_date, match_family);

-- Cases the linking rules (and vaccination identity) leave to a person: a sender patient that may
-- be a registry patient already known (possible-duplicate: candidates lists them, evidence says
-- which fields agreed or conflicted, never the values), or an order number (ORC-3) a sender reused
-- for another patient (order-number-conflict: vaccination_ids are the two records, neither moved).
CREATE TABLE registry_reviews (
    id                  bigserial PRIMARY KEY,
    env                 char(1) NOT NULL CHECK (env IN ('P', 'T')),
    kind                text NOT NULL CHECK (kind IN ('possible-duplicate', 'order-number-conflict')),
    registry_patient_id bigint NOT NULL REFERENCES registry_patients (id),
    patient_id          bigint REFERENCES patients (id),
    candidates          bigint[] NOT NULL DEFAULT '{}',
    vaccination_ids     bigint[] NOT NULL DEFAULT '{}',
    evidence            jsonb NOT NULL DEFAULT '{}',
    message_id          bigint REFERENCES messages (id),
    status              text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'linked', 'distinct', 'resolved')),
    resolved_by         bigint REFERENCES users (id),
    resolved_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registry_reviews_open ON registry_reviews (env, created_at) WHERE status = 'open';
CREATE INDEX registry_reviews_patient ON registry_reviews (registry_patient_id);
CREATE INDEX registry_reviews_candidates ON registry_reviews USING gin (candidates);

-- Reports of the same dose (same registry patient, administration date and vaccine group) by
-- several senders, or as administered and as historical, stay one row each (each sender's later
-- U/D finds its own); all but one are merged_into the one shown: an administered report wins over
-- historical ones. Administered reports are never merged with each other.
ALTER TABLE vaccinations
    ADD COLUMN dose_key    text NOT NULL DEFAULT '',
    ADD COLUMN merged_into bigint REFERENCES vaccinations (id);
UPDATE vaccinations SET dose_key = CASE WHEN cvx <> '' THEN 'cvx:' || cvx ELSE 'ndc:' || ndc END;

-- RXA-20 NA (not administered, other than evidence of immunity) is recorded but is not a dose.
ALTER TABLE vaccinations DROP CONSTRAINT vaccinations_kind_check;
ALTER TABLE vaccinations ADD CONSTRAINT vaccinations_kind_check
    CHECK (kind IN ('dose', 'refusal', 'immunity', 'not_administered'));
