-- A queued job whose message the broker has not confirmed yet carries a
-- publish_deadline. The submitter clears it when the confirm arrives; if the
-- API dies first, the scheduler's recovery publishes the job once the
-- deadline has passed. A claim clears it too.
ALTER TABLE jobs ADD COLUMN publish_deadline timestamptz;
CREATE INDEX jobs_unconfirmed ON jobs (publish_deadline) WHERE publish_deadline IS NOT NULL;

-- Per-job retry backoff (milliseconds, jitter mode); NULL: the worker's default.
ALTER TABLE jobs ADD COLUMN backoff_base_ms integer CHECK (backoff_base_ms > 0),
                 ADD COLUMN backoff_cap_ms integer CHECK (backoff_cap_ms > 0),
                 ADD COLUMN backoff_jitter text CHECK (backoff_jitter IN ('full', 'equal', 'none'));
