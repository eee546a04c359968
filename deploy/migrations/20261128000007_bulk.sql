-- Bulk reassignment (issue 9): the ownership history names the bulk operation that moved a
-- lead (NULL for every other cause). The operation itself lives in the events table
-- (aggregate type BulkOperation).
ALTER TABLE rm_ownership_history ADD COLUMN operation_id uuid;
CREATE INDEX rm_ownership_history_operation ON rm_ownership_history (operation_id)
    WHERE operation_id IS NOT NULL;
