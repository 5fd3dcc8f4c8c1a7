-- Onboarding and certification reports (package report).
--
-- Reports select a site's archived messages of one environment by time of receipt. Without this
-- index they would read every site's messages of the period (messages_received); with it, and
-- with id in the key, finding the messages of a period that are not summarized yet is an
-- index-only anti-join against report_facts.
-- (The portal's messages_site_received, on (site_id, received_at), serves its all-environment
-- intake page; this one serves one environment's period with the ids.)
CREATE INDEX messages_site_env_received ON messages (site_id, env, received_at, id);

-- One narrow row per archived message, filled by the reports (report.Service.Summarize) from the
-- raw message the first time a report covers it: what the quality and reconciliation reports add
-- up, so that a month of a busy site (a million messages) is read from ~100-byte rows instead of
-- parsing a million raw messages again for every report. Not written by intake. The counts of
-- doses are those of the message as sent (also those of its rejected doses): data quality is about
-- what the site sends.
CREATE TABLE report_facts (
    message_id    bigint PRIMARY KEY,           -- messages (id); no foreign key: its check would lock every message row
    site_id       bigint NOT NULL,
    env           text NOT NULL,                 -- P, T, or empty: rejected before its environment was known
    received_at   timestamptz NOT NULL,
    control_id    text NOT NULL,
    ack_code      text NOT NULL,
    resend        boolean NOT NULL,              -- archived copy of a resend (original's ACK)
    readable      boolean NOT NULL,              -- the raw message parsed
    has_errors    boolean NOT NULL,
    has_warnings  boolean NOT NULL,
    findings      text[] NOT NULL,               -- distinct 'severity:rule'
    administered  smallint NOT NULL,
    historical    smallint NOT NULL,
    refusals      smallint NOT NULL,
    immunity      smallint NOT NULL,
    with_lot      smallint NOT NULL,
    with_mvx      smallint NOT NULL,
    with_funding  smallint NOT NULL,
    with_vis      smallint NOT NULL,
    race          boolean NOT NULL,
    ethnicity     boolean NOT NULL,
    address       boolean NOT NULL,
    lag_1         smallint NOT NULL,             -- administered doses received within 1 day
    lag_7         smallint NOT NULL,             -- 2 to 7 days
    lag_30        smallint NOT NULL,             -- 8 to 30 days
    lag_late      smallint NOT NULL,             -- later
    lag_days      integer NOT NULL               -- sum of the days, for the mean
);
CREATE INDEX report_facts_site ON report_facts (site_id, env, received_at);

-- Sign-offs of a site's production-readiness checklist by registry staff (every one is also in
-- audit_log). The latest row of an item decides; revoked withdraws a sign-off.
CREATE TABLE certification_signoffs (
    id          bigserial PRIMARY KEY,
    site_id     bigint NOT NULL REFERENCES sites (id),
    item        text NOT NULL,
    signed_by   text NOT NULL,
    user_id     bigint REFERENCES users (id) ON DELETE SET NULL,
    signed_at   timestamptz NOT NULL,
    note        text NOT NULL DEFAULT '',
    revoked     boolean NOT NULL DEFAULT false
);
CREATE INDEX certification_signoffs_site ON certification_signoffs (site_id);

-- Daily rollups of report_facts (store/report_days.go): the tallies of a site's closed UTC day
-- (over for an hour: no message of it can still arrive) for one report environment, made by the
-- first quality report (or serve's periodic summaries) that reads the day whole; a day without
-- messages is rolled up too, as zeros. A report over a past month reads ~31 rows.
-- env is the report's environment; its tallies include the messages rejected before their
-- environment was known. Deleting rows is always safe: they are made again.
CREATE TABLE report_days (
    site_id        bigint NOT NULL,
    env            char(1) NOT NULL,
    day            date NOT NULL,
    tally          bigint[] NOT NULL,             -- in the order of store.tallyColumns
    rules          text[] NOT NULL,               -- 'severity:rule'
    rule_messages  bigint[] NOT NULL,             -- messages with each of rules
    PRIMARY KEY (site_id, env, day)
);
