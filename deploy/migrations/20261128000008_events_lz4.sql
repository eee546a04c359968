-- Event payloads above ~2 kB (decision records, pool picks) are compressed by TOAST. lz4
-- compresses and decompresses several times faster than the default pglz, and every log
-- reader (publisher, projectors, audit) decompresses each payload it reads. Only new rows
-- are affected. A server built without lz4 keeps pglz.
DO $$
BEGIN
    ALTER TABLE events ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'lz4 is not available (%); event payloads stay pglz-compressed', SQLERRM;
END;
$$;
