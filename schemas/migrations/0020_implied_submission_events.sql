-- A submission into `queued`, nearly every one, stops writing a job_events
-- row: the jobs row says all it said (created_at, and `queued` for a job
-- with no stored submission event). Submissions into `scheduled` keep
-- theirs. The row, its two index entries and its WAL were about a sixth of
-- PostgreSQL's writes per job (scripts/bench, README "Performance").
-- The timeline (GET /v1/jobs/{id}/events, common/admin_store.cpp) adds the
-- implied event, and the queue history counts submissions by the jobs'
-- created_at, through this index: a BRIN costs an insert almost nothing
-- while rows are appended in time order.
CREATE INDEX jobs_created ON jobs USING brin (created_at);
