-- Intake: resends recognised by content, findings archived compactly.
--
-- A resend is the same message: same site, environment and MSH-10 *and* the same content
-- (content_digest, ingest.ContentDigest: SHA-256 of the segments without MSH-7). A different
-- message under a control ID the site already used is stored like any other (and warned, 0357
-- code 205), so the resend key includes the digest. Rows archived before this migration have no
-- digest: the writer computes it from their raw message when a message with their key arrives.
ALTER TABLE messages ADD COLUMN content_digest bytea;
DROP INDEX messages_resend;
CREATE UNIQUE INDEX messages_resend ON messages (site_id, env, control_id, content_digest)
    WHERE resend_key AND site_id IS NOT NULL;

-- findings holds the findings the ACK lists (at most ack.DefaultMaxERR, errors first), as before;
-- a message with more keeps the rest in more_findings, compactly (store.DecodeFindings: gzip of
-- one tab-separated line per finding), and their number in more_findings_count. A junk message
-- with 100,000 findings costs a few hundred kilobytes, not tens of megabytes of jsonb.
ALTER TABLE messages
    ADD COLUMN more_findings bytea,
    ADD COLUMN more_findings_count integer NOT NULL DEFAULT 0;
