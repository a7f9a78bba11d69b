-- job_attempts loses its foreign key to jobs. Every attempt row is written
-- from the RETURNING of an UPDATE of its job's row (the completion and the
-- lease expiry, common/store_claims.cpp and store_recovery.cpp), so the key
-- holds by construction, while checking it cost a query and a row lock per
-- attempt: the lock wrote the job's new row version once more (a WAL
-- record) and the checks took about a tenth of PostgreSQL's CPU on the hot
-- path (scripts/bench, README "Performance"). Deleting a job now deletes
-- its attempts explicitly (common/retention.cpp), as for job_events, which
-- never had a foreign key.
ALTER TABLE job_attempts DROP CONSTRAINT job_attempts_job_id_fkey;
