-- The archive row's findings as json, not jsonb (issue 19: PostgreSQL's CPU per message).
--
-- messages.findings holds the findings a message's ACK listed, as the writer wrote them
-- (store/findings_json.go). Stored as jsonb, PostgreSQL parsed each document into its binary
-- form at every insert: it built a tree of values, sorted every object's keys and wrote them
-- out again — 9 µs of its CPU per message for the two findings a typical VXU has (make bench's
-- traffic: 356 bytes of JSON), a twentieth of what the whole write path costs it. A json
-- value is checked to be valid JSON (a lexer pass, no tree) and stored as its text: 2 µs for
-- the same document, 20% fewer bytes on the page and in the WAL than jsonb's form.
--
-- Nothing gains from the parsed form: the registry reads a message's findings whole (the
-- reports' catch-up, certification, the portal's message list) and decodes them in Go; the one
-- query that looks inside them, the portal's most frequent findings of a site, reads them with
-- json_array_elements, as it read jsonb with jsonb_array_elements. The documents keep their
-- content; only jsonb's normalised spelling (a space after each colon and comma, keys sorted)
-- gives way to the writer's own.
--
-- Cost on a big archive: changing a column's type rewrites the table and rebuilds its indexes,
-- holding its lock (vaxgate serve migrates before it listens; stop an older version first).
-- BenchmarkMigrateFindingsJSON: 17 s for an archive of 1,000,000 messages of about 1.5 kB on the
-- shared 2-core development machine.
ALTER TABLE messages
    ALTER COLUMN findings DROP DEFAULT,
    ALTER COLUMN findings TYPE json USING findings::json,
    ALTER COLUMN findings SET DEFAULT '[]'::json;
