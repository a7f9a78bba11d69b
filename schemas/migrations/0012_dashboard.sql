-- The admin dashboard (README, "Dashboard"): every state change of a job as
-- an event (its timeline), paused queues, and queue history at a bounded
-- resolution.

-- One row per state change, written by a statement-level trigger from the
-- transition tables, so every existing transition (claims, completions, the
-- scheduler, cancels, retries) records it without a change to its SQL, and
-- a batched UPDATE costs one INSERT.
CREATE TABLE job_events (
  id         bigserial PRIMARY KEY,
  job_id     uuid NOT NULL,
  queue      text NOT NULL,
  from_state job_state,
  to_state   job_state NOT NULL,
  attempt    integer NOT NULL,
  worker_id  text,
  at         timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX job_events_job ON job_events (job_id, id);
-- Time only grows: a BRIN index is tiny and cheap to keep (throughput samples).
CREATE INDEX job_events_at ON job_events USING brin (at);

CREATE FUNCTION jobs_record_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO job_events (job_id, queue, from_state, to_state, attempt, worker_id)
    SELECT n.id, n.queue, NULL, n.state, n.attempts, NULL FROM new_rows n;
  ELSE
    INSERT INTO job_events (job_id, queue, from_state, to_state, attempt, worker_id)
    SELECT n.id, n.queue, o.state, n.state, n.attempts,
           CASE WHEN n.state = 'running' THEN n.worker_id END
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE o.state IS DISTINCT FROM n.state;
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER jobs_events_insert AFTER INSERT ON jobs
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs_record_events();
CREATE TRIGGER jobs_events_update AFTER UPDATE ON jobs
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION jobs_record_events();

-- A paused queue: its workers cancel their consumers (NOTIFY
-- jobs_queue_pause, '<queue>') until it is resumed. Absent row: running.
CREATE TABLE queue_controls (
  queue      text PRIMARY KEY,
  paused     boolean NOT NULL DEFAULT false,
  changed_at timestamptz NOT NULL DEFAULT now(),
  changed_by text NOT NULL DEFAULT ''
);

-- Queue history: one point per queue per bucket at three resolutions
-- (10 s kept 1 h, 60 s kept 1 day, 600 s kept 1 week), pruned by the
-- sampler. Depths are the last sample in the bucket; counts are sums.
CREATE TABLE queue_history (
  queue      text NOT NULL,
  resolution integer NOT NULL,  -- seconds per bucket
  bucket     timestamptz NOT NULL,
  scheduled  bigint NOT NULL DEFAULT 0,
  ready      bigint NOT NULL DEFAULT 0,  -- queued in PostgreSQL: published, not yet claimed
  running    bigint NOT NULL DEFAULT 0,
  submitted  bigint NOT NULL DEFAULT 0,
  succeeded  bigint NOT NULL DEFAULT 0,
  failed     bigint NOT NULL DEFAULT 0,  -- attempts that failed (retry scheduled)
  dead       bigint NOT NULL DEFAULT 0,
  cancelled  bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (queue, resolution, bucket)
);

-- The sampler counts the jobs not yet final per queue from this index alone.
CREATE INDEX jobs_active ON jobs (queue, state) WHERE state IN ('scheduled', 'queued', 'running');
