-- Core schema: who may send (organizations, sites, facilities, sender credentials), what was received
-- (the message archive) and what the registry knows (patients as reported per organization, registry
-- patients linking them, vaccinations, observations, next of kin, data-sharing changes).
--
-- Conventions: env is 'P' (production) or 'T' (test); test and production records never share a row.
-- Decoded details that are not used for identity, matching or indexing are kept as jsonb next to the
-- key columns, so that nothing the sender reported is lost.

CREATE TABLE organizations (
    id          bigserial PRIMARY KEY,
    code        text NOT NULL UNIQUE,            -- registry organization code / PIN
    name        text NOT NULL,
    parent_id   bigint REFERENCES organizations (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (parent_id IS NULL OR parent_id <> id)
);

CREATE TABLE sites (
    id              bigserial PRIMARY KEY,
    organization_id bigint NOT NULL REFERENCES organizations (id),
    code            text NOT NULL UNIQUE,        -- site PIN
    name            text NOT NULL,
    status          text NOT NULL DEFAULT 'registered'
                    CHECK (status IN ('registered', 'testing', 'production')),
    go_live_date    date,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sites_organization ON sites (organization_id);

-- The MSH-4 sending facility identifiers (HD-1 namespace ID, or HD-2 universal ID) a site may send for.
-- One identifier belongs to one site: a site cannot submit for another.
CREATE TABLE site_facilities (
    facility_id text PRIMARY KEY,
    site_id     bigint NOT NULL REFERENCES sites (id) ON DELETE CASCADE
);
CREATE INDEX site_facilities_site ON site_facilities (site_id);

-- How a sender proves it is a site: SOAP username/password/facilityID, or over MLLP a TLS client
-- certificate subject or a source address range.
CREATE TABLE sender_credentials (
    id            bigserial PRIMARY KEY,
    site_id       bigint NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    transport     text NOT NULL CHECK (transport IN ('soap', 'mllp')),
    username      text UNIQUE,
    password_hash text,                          -- argon2id, PHC string format
    facility_id   text,                          -- SOAP facilityID
    cert_subject  text,                          -- MLLP over TLS: client certificate subject DN
    source_cidr   cidr,                          -- MLLP: source address range
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK (transport <> 'soap' OR (username IS NOT NULL AND password_hash IS NOT NULL)),
    CHECK (transport <> 'mllp' OR cert_subject IS NOT NULL OR source_cidr IS NOT NULL)
);
CREATE INDEX sender_credentials_site ON sender_credentials (site_id);

-- Every message received, whatever became of it: raw bytes, sender, transport, ACK and findings.
-- resend_key marks the messages whose ACK is the final answer to that sender + MSH-10: those that
-- were accepted (AA or AE). A message received again with the same key gets the stored ACK back.
-- Rejected messages and internal failures stored nothing and are archived without it, so that the
-- sender's retry is evaluated again.
CREATE TABLE messages (
    id               bigserial PRIMARY KEY,
    env              char(1) CHECK (env IN ('P', 'T')),
    site_id          bigint REFERENCES sites (id),
    credential_id    bigint REFERENCES sender_credentials (id),
    transport        text NOT NULL,
    control_id       text NOT NULL DEFAULT '',
    sending_facility text NOT NULL DEFAULT '',
    message_type     text NOT NULL DEFAULT '',
    received_at      timestamptz NOT NULL,
    processed_at     timestamptz NOT NULL DEFAULT now(),
    raw              bytea NOT NULL,
    ack              bytea NOT NULL,
    ack_code         text NOT NULL CHECK (ack_code IN ('AA', 'AE', 'AR')),
    findings         jsonb NOT NULL DEFAULT '[]',
    resend_key       boolean NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX messages_resend ON messages (site_id, control_id)
    WHERE resend_key AND site_id IS NOT NULL;
CREATE INDEX messages_received ON messages (received_at);

-- The person, as the registry knows them: reports of the same person from different organizations
-- are linked here. Data sharing is a property of the person.
CREATE TABLE registry_patients (
    id            bigserial PRIMARY KEY,
    env           char(1) NOT NULL CHECK (env IN ('P', 'T')),
    family_name   text NOT NULL DEFAULT '',
    given_name    text NOT NULL DEFAULT '',
    middle_name   text NOT NULL DEFAULT '',
    birth_date    date,
    sex           text NOT NULL DEFAULT '',
    mother_maiden text NOT NULL DEFAULT '',
    postal_code   text NOT NULL DEFAULT '',
    sharing       char(1) NOT NULL DEFAULT 'Y' CHECK (sharing IN ('Y', 'N', 'U')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX registry_patients_match ON registry_patients (env, birth_date, lower(family_name));

-- A patient as identified by one sending organization: PID-3 identifier + assigning authority + type.
CREATE TABLE patients (
    id                  bigserial PRIMARY KEY,
    env                 char(1) NOT NULL CHECK (env IN ('P', 'T')),
    organization_id     bigint NOT NULL REFERENCES organizations (id),
    id_value            text NOT NULL,
    id_authority        text NOT NULL DEFAULT '',
    id_type             text NOT NULL DEFAULT '',
    registry_patient_id bigint NOT NULL REFERENCES registry_patients (id),
    family_name         text NOT NULL DEFAULT '',
    given_name          text NOT NULL DEFAULT '',
    middle_name         text NOT NULL DEFAULT '',
    birth_date          date,
    sex                 text NOT NULL DEFAULT '',
    mother_maiden       text NOT NULL DEFAULT '',
    postal_code         text NOT NULL DEFAULT '',
    protection          text NOT NULL DEFAULT '',    -- PD1-12 as reported (recorded; policy decides its effect)
    demographics        jsonb NOT NULL,              -- the full decoded PID/PD1 of the latest report
    last_message_id     bigint REFERENCES messages (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (env, organization_id, id_value, id_authority, id_type)
);
CREATE INDEX patients_registry ON patients (registry_patient_id);

-- Every reported version of a patient's demographics: nothing reported is lost.
CREATE TABLE patient_reports (
    id           bigserial PRIMARY KEY,
    patient_id   bigint NOT NULL REFERENCES patients (id),
    message_id   bigint NOT NULL REFERENCES messages (id),
    demographics jsonb NOT NULL,
    reported_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patient_reports_patient ON patient_reports (patient_id);

CREATE TABLE next_of_kin (
    id           bigserial PRIMARY KEY,
    patient_id   bigint NOT NULL REFERENCES patients (id),
    message_id   bigint NOT NULL REFERENCES messages (id),
    set_id       integer NOT NULL DEFAULT 0,
    relationship text NOT NULL DEFAULT '',
    details      jsonb NOT NULL,
    reported_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX next_of_kin_patient ON next_of_kin (patient_id);

-- A vaccination event: a dose given (administered or historical), a refusal, or evidence of immunity.
-- Deletion (RXA-21 D) marks it entered in error; rows are never removed.
CREATE TABLE vaccinations (
    id                  bigserial PRIMARY KEY,
    env                 char(1) NOT NULL CHECK (env IN ('P', 'T')),
    patient_id          bigint NOT NULL REFERENCES patients (id),
    registry_patient_id bigint NOT NULL REFERENCES registry_patients (id),
    organization_id     bigint NOT NULL REFERENCES organizations (id),
    site_id             bigint NOT NULL REFERENCES sites (id),
    filler_order_id     text,                        -- ORC-3, "id^namespace"
    kind                text NOT NULL DEFAULT 'dose' CHECK (kind IN ('dose', 'refusal', 'immunity')),
    cvx                 text NOT NULL DEFAULT '',
    ndc                 text NOT NULL DEFAULT '',
    administered_on     date NOT NULL,
    historical          boolean NOT NULL,            -- RXA-9 other than 00
    info_source         text NOT NULL DEFAULT '',
    amount              text NOT NULL DEFAULT '',
    amount_units        text NOT NULL DEFAULT '',
    lot                 text NOT NULL DEFAULT '',
    lot_expiration      date,
    mvx                 text NOT NULL DEFAULT '',
    route               text NOT NULL DEFAULT '',
    body_site           text NOT NULL DEFAULT '',
    completion_status   text NOT NULL DEFAULT '',
    action_code         text NOT NULL DEFAULT '',
    refusal_reason      text NOT NULL DEFAULT '',
    details             jsonb NOT NULL,              -- full decoded ORC/RXA/RXR of the latest report
    deleted             boolean NOT NULL DEFAULT false,
    deleted_at          timestamptz,
    first_message_id    bigint NOT NULL REFERENCES messages (id),
    last_message_id     bigint NOT NULL REFERENCES messages (id),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX vaccinations_filler ON vaccinations (env, organization_id, filler_order_id)
    WHERE filler_order_id IS NOT NULL;
CREATE INDEX vaccinations_patient ON vaccinations (patient_id, cvx, administered_on);
CREATE INDEX vaccinations_registry_patient ON vaccinations (registry_patient_id);

-- Every report of a vaccination, so that updates keep what was reported before.
CREATE TABLE vaccination_reports (
    id             bigserial PRIMARY KEY,
    vaccination_id bigint NOT NULL REFERENCES vaccinations (id),
    message_id     bigint NOT NULL REFERENCES messages (id),
    action_code    text NOT NULL DEFAULT '',
    details        jsonb NOT NULL,
    reported_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX vaccination_reports_vaccination ON vaccination_reports (vaccination_id);

-- OBX observations: at patient level (vaccination_id null) or about one vaccination.
CREATE TABLE observations (
    id             bigserial PRIMARY KEY,
    patient_id     bigint NOT NULL REFERENCES patients (id),
    vaccination_id bigint REFERENCES vaccinations (id),
    message_id     bigint NOT NULL REFERENCES messages (id),
    set_id         integer NOT NULL DEFAULT 0,
    value_type     text NOT NULL DEFAULT '',
    code           text NOT NULL,                    -- OBX-3 identifier (LOINC)
    code_system    text NOT NULL DEFAULT '',
    value          text NOT NULL DEFAULT '',         -- OBX-5 identifier or value
    value_system   text NOT NULL DEFAULT '',
    sub_id         text NOT NULL DEFAULT '',
    observed_on    date,
    details        jsonb NOT NULL
);
CREATE INDEX observations_vaccination ON observations (vaccination_id);
CREATE INDEX observations_patient ON observations (patient_id);

-- Every change of a registry patient's data-sharing status, whatever made it.
CREATE TABLE sharing_changes (
    id                  bigserial PRIMARY KEY,
    registry_patient_id bigint NOT NULL REFERENCES registry_patients (id),
    old_status          char(1),
    new_status          char(1) NOT NULL CHECK (new_status IN ('Y', 'N', 'U')),
    source              text NOT NULL,               -- 'hl7', 'admin', 'policy'
    reason              text NOT NULL DEFAULT '',
    form_ref            text NOT NULL DEFAULT '',
    user_id             bigint,
    message_id          bigint REFERENCES messages (id),
    changed_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sharing_changes_patient ON sharing_changes (registry_patient_id);

-- Code sets imported at run time (vaxgate codes import), in ingest/codes' compact format; the newest
-- one overrides the snapshot embedded in the binary.
CREATE TABLE code_snapshots (
    id          bigserial PRIMARY KEY,
    imported_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    data        bytea NOT NULL
);
