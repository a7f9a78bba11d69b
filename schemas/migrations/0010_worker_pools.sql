-- Worker pools run by supervisors (jobs-supervisor, workers/supervisor/).
-- Each supervisor upserts one row per queue it runs every interval (its
-- heartbeat): the workers it runs, the number it wants, its policy. GET
-- /v1/queues reads the live rows (expires_at in the future); rows of a
-- supervisor that stopped or died expire by themselves.
CREATE TABLE worker_pools (
  supervisor_id             text NOT NULL,
  queue                     text NOT NULL,
  running                   integer NOT NULL,
  desired                   integer NOT NULL,
  min_workers               integer NOT NULL,
  max_workers               integer NOT NULL,
  target_backlog_per_worker double precision NOT NULL,
  target_drain_s            double precision NOT NULL,
  max_wait_s                double precision NOT NULL,
  scale_up_cooldown_ms      integer NOT NULL,
  scale_down_cooldown_ms    integer NOT NULL,
  heartbeat_at              timestamptz NOT NULL DEFAULT now(),
  expires_at                timestamptz NOT NULL,
  PRIMARY KEY (supervisor_id, queue)
);

-- The scaling signal's PostgreSQL inputs: the oldest waiting job of a queue
-- and its queued count, and the attempts finished lately (completion rate).
-- BRIN: attempt rows arrive in finished_at order, so the index costs next to
-- nothing on the completion path.
CREATE INDEX jobs_waiting ON jobs (queue, queued_at) WHERE state = 'queued';
CREATE INDEX job_attempts_finished ON job_attempts USING brin (finished_at);
