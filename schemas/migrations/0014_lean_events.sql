-- The hot path stops writing job_events. A claim (into `running`) and the
-- end of an attempt (out of `running`) are already recorded by job_attempts
-- (started_at, finished_at, outcome, worker_id): the timeline
-- (GET /v1/jobs/{id}/events) and the queue history read them from there.
-- job_events keeps every other change: submission, the scheduler's, cancels
-- and retries. Three event rows per job, each with its index entries, cost
-- the claim and completion about a sixth of PostgreSQL's CPU and a quarter
-- of the WAL (scripts/bench, README "Performance").
ALTER TABLE job_attempts ADD COLUMN queue text;
UPDATE job_attempts a SET queue = j.queue FROM jobs j WHERE j.id = a.job_id;
-- (job_attempts_finished, BRIN, from 0010, serves the queue history's windows.)

CREATE OR REPLACE FUNCTION jobs_record_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO job_events (job_id, queue, from_state, to_state, attempt, worker_id)
    SELECT n.id, n.queue, NULL, n.state, n.attempts, NULL FROM new_rows n;
  ELSE
    INSERT INTO job_events (job_id, queue, from_state, to_state, attempt, worker_id)
    SELECT n.id, n.queue, o.state, n.state, n.attempts, NULL
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE o.state IS DISTINCT FROM n.state AND o.state <> 'running' AND n.state <> 'running';
  END IF;
  RETURN NULL;
END $$;
