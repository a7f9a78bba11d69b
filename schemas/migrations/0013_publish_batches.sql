-- The outbox of the API's group commits, one row per commit instead of a
-- marker on every job. A row lists the queued jobs whose messages were
-- published after that commit; the submitter deletes it once the broker has
-- confirmed them all (in one DELETE a second). If the API dies first, the
-- row outlives its deadline and the scheduler's recovery publishes those of
-- its jobs still queued. Clearing a per-job publish_deadline instead was a
-- second UPDATE of every job row (and of all its indexes); under a backlog
-- it cost PostgreSQL more than the claim.
CREATE TABLE publish_batches (
  id       bigserial PRIMARY KEY,
  deadline timestamptz NOT NULL,
  job_ids  uuid[] NOT NULL
);
CREATE INDEX publish_batches_deadline ON publish_batches (deadline);

-- Jobs still waiting for a confirm under the old scheme keep their recovery.
INSERT INTO publish_batches (deadline, job_ids)
SELECT min(publish_deadline), array_agg(id) FROM jobs
WHERE publish_deadline IS NOT NULL AND state = 'queued'
HAVING count(*) > 0;

DROP INDEX jobs_unconfirmed;
ALTER TABLE jobs DROP COLUMN publish_deadline;
