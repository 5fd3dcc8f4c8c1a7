-- Report facts as columns of the archive row (issue 19: store each fact once).
--
-- What is true now (migration 009's "filled by the reports ... Not written by intake" is
-- history: the writer went on to insert a report_facts row with every archive row of a known
-- site, in the same transaction, and now report_facts is gone): the facts the quality
-- and reconciliation reports add up are columns of messages, written by the archive insert itself
-- (store/persist.go insertMessages) in the same statement as the row they describe. report_facts
-- repeated six columns messages already holds (site_id, env, received_at, control_id, ack_code
-- and, derived, the resend flag) and cost PostgreSQL a second heap row and two index entries per
-- message (its primary key and report_facts_site, the same key as messages_site_env_received):
-- about 16 µs of CPU per message of some 220. The reports now read messages through
-- messages_site_env_received (store/report.go, store/report_days.go).
--
-- The facts columns are NULL together, and NULL means "no facts": readable IS NULL is the test.
--   * a message without a site (its sender unknown) is in no report and never gets facts;
--   * a message of a known site archived before facts were written at intake, and never
--     summarized, has none until a report or serve's periodic summaries read its raw copy
--     (report.Service.Summarize, store.ReportStore.SaveFacts: an UPDATE of these columns).
-- The resend flag of a facts row is not stored: it is NOT resend_key AND ack_code <> 'AR' (the
-- archived copy of a resend, answered with the original's ACK), which is how intake and the
-- summaries computed it (store/facts.go archivedResend).
--
-- Cost on a big archive. ADD COLUMN of a nullable column without a default changes the catalog
-- only: no row is rewritten, old rows read the new columns as NULL. The copy is one
-- UPDATE ... FROM report_facts (a hash or merge join, one pass over each table): it writes a new
-- version of every archive row that has facts — the size of the archive in heap and WAL, and an
-- entry in each of messages' indexes per row (the pages are full, so the new versions are not
-- HOT) — and leaves the old versions to VACUUM (autovacuum, or VACUUM messages after the
-- upgrade to give the space back to new rows at once). BenchmarkMigrateFacts: 49 s for an archive
-- of 1,000,000 messages of about 1 kB, all with facts, on the shared 2-core development machine —
-- some 8 minutes per 10 million, inside this migration's transaction (vaxgate serve migrates
-- before it listens; an older version still running would wait on the table's lock, then fail
-- its batches, which insert into report_facts: stop it first). Recomputing the facts from the raw
-- messages instead would write the same new versions and parse every message as well, so they
-- are copied.
ALTER TABLE messages
    ADD COLUMN readable      boolean,            -- the raw message parsed as HL7; NULL: no facts
    ADD COLUMN has_errors    boolean,            -- a finding of severity E
    ADD COLUMN has_warnings  boolean,            -- a finding of severity W
    ADD COLUMN finding_keys  text[],             -- distinct 'severity:rule' of all its findings, sorted
    ADD COLUMN administered  smallint,           -- counts of the message as sent (its rejected doses too)
    ADD COLUMN historical    smallint,
    ADD COLUMN refusals      smallint,
    ADD COLUMN immunity      smallint,
    ADD COLUMN with_lot      smallint,           -- administered doses with each item
    ADD COLUMN with_mvx      smallint,
    ADD COLUMN with_funding  smallint,
    ADD COLUMN with_vis      smallint,
    ADD COLUMN has_race      boolean,            -- PID-10
    ADD COLUMN has_ethnicity boolean,            -- PID-22
    ADD COLUMN has_address   boolean,            -- PID-11 with street and ZIP code
    ADD COLUMN lag_1         smallint,           -- administered doses received within 1 day
    ADD COLUMN lag_7         smallint,           -- 2 to 7 days
    ADD COLUMN lag_30        smallint,           -- 8 to 30 days
    ADD COLUMN lag_late      smallint,           -- later
    ADD COLUMN lag_days      integer;            -- sum of the days, for the mean

UPDATE messages m SET readable = f.readable, has_errors = f.has_errors, has_warnings = f.has_warnings,
    finding_keys = f.findings, administered = f.administered, historical = f.historical, refusals = f.refusals,
    immunity = f.immunity, with_lot = f.with_lot, with_mvx = f.with_mvx, with_funding = f.with_funding,
    with_vis = f.with_vis, has_race = f.race, has_ethnicity = f.ethnicity, has_address = f.address,
    lag_1 = f.lag_1, lag_7 = f.lag_7, lag_30 = f.lag_30, lag_late = f.lag_late, lag_days = f.lag_days
FROM report_facts f
WHERE m.id = f.message_id;

-- A report_facts row without its message (report_facts had no foreign key) described nothing a
-- report could count the same way again; it goes with the table.
DROP TABLE report_facts; -- and its index report_facts_site

-- The messages of a known site that have no facts, for the summaries' catch-up
-- (store.ReportStore.MissingFacts): intake writes facts with every such row, so the index is
-- empty but for rows archived before this version, and costs intake no entry (the predicate is
-- false for every row it inserts; an unknown sender's row has no site). Finding what a report
-- must summarize reads this index, not the period's archive rows; the catch-up's UPDATE takes a
-- row out of it.
CREATE INDEX messages_without_facts ON messages (site_id, env, received_at) WHERE readable IS NULL AND site_id IS NOT NULL;

-- The planner's statistics of the new columns (the reports' plans, on a fresh upgrade).
ANALYZE messages;
