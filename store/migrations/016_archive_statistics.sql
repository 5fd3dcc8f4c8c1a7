-- Cheaper statistics for the archive (issue 19: PostgreSQL's CPU per message).
--
-- Autovacuum analyzes messages each time it grows by a tenth (autovacuum_analyze_scale_factor),
-- sampling 300 × the largest column statistics target rows (30,000 at the default target of 100)
-- and building statistics for every column. Archive rows are 2 to 2.5 kB, so the sample reads
-- about as many pages, and the raw message, the ACK and the findings, never filtered or joined
-- on, cost the most to summarise. On an archive of 210,000 rows from make bench, one ANALYZE took
-- 1.3-1.4 s of a backend's time, each time: about 13 µs per message while the archive holds a
-- million messages (an analyze per 100,000 new ones), more while it is smaller, 1 µs at ten million.
-- In make bench it lands in some phases and not others (the upkeep column names it).
--
-- The wide columns get no statistics (target 0: ANALYZE skips them), the others a target of 30, the
-- one the writer's own ANALYZE of the key columns has always used (store/planstats.go): a sample
-- of 9,000 rows, enough for the look-ups by key and the reports' ranges of one site's days. The
-- same ANALYZE took 0.26-0.32 s (BenchmarkAnalyzeArchive, 200,000 rows of ~2 kB: 487 ms at
-- migration 015, 110 ms after this one). A column added by a later migration starts at the
-- default target and raises the sample again: give it 30 (or 0) there.
ALTER TABLE messages
    ALTER COLUMN raw SET STATISTICS 0,
    ALTER COLUMN ack SET STATISTICS 0,
    ALTER COLUMN findings SET STATISTICS 0,
    ALTER COLUMN more_findings SET STATISTICS 0;
DO $$
DECLARE
    col name;
BEGIN
    FOR col IN
        SELECT attname FROM pg_attribute
        WHERE attrelid = 'messages'::regclass AND attnum > 0 AND NOT attisdropped
          AND attname NOT IN ('raw', 'ack', 'findings', 'more_findings')
    LOOP
        EXECUTE format('ALTER TABLE messages ALTER COLUMN %I SET STATISTICS 30', col);
    END LOOP;
END
$$;
