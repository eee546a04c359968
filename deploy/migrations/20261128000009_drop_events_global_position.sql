-- No query reads the log by global_position alone: readers go by
-- (transaction_id, global_position), which events_commit_order serves, and single events by
-- the primary key. Dropping the unused index saves one index insertion per event written.
DROP INDEX IF EXISTS events_global_position;
