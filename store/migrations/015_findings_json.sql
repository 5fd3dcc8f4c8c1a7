-- The archive row's findings as json, not jsonb (issue 19: PostgreSQL's CPU per message).
--
-- messages.findings holds the findings a message's ACK listed, as the writer wrote them
-- (store/findings_json.go). Stored as jsonb, PostgreSQL parsed each document into its binary
-- form at every insert: it built a tree of values, sorted every object's keys and wrote them
-- out again. A json value is only checked to be valid JSON (a lexer pass, no tree) and stored
-- as its text, about a quarter smaller on the page and in the WAL. BenchmarkArchiveFacts, with
-- the two findings of a typical message of make bench's traffic: 5.5 to 11 µs less of
-- PostgreSQL's CPU per archive row.
--
-- Nothing gains from the parsed form: the registry reads a message's findings whole (the
-- reports' catch-up, certification, the portal's message list) and decodes them in Go, and the
-- portal's most frequent findings count the report facts' finding keys (reading the JSON only
-- of a message archived before intake wrote facts). The documents keep their content; only
-- jsonb's normalised spelling (a space after each colon and comma, keys sorted) gives way to
-- the writer's own.
--
-- Cost on a big archive: changing a column's type rewrites the table and rebuilds its indexes,
-- holding its lock (vaxgate serve migrates before it listens; stop an older version first).
-- BenchmarkMigrateFindingsJSON: 17 s for an archive of 1,000,000 messages of about 1.5 kB on the
-- shared 2-core development machine.
ALTER TABLE messages
    ALTER COLUMN findings DROP DEFAULT,
    ALTER COLUMN findings TYPE json USING findings::json,
    ALTER COLUMN findings SET DEFAULT '[]'::json;
