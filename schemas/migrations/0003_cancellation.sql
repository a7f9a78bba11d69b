-- Cancellation and execution timeouts (README, "Cancelling a job", "Timeouts").

-- Set when a client cancels a running job: its worker is told (NOTIFY
-- jobs_cancel, '<id>') and sees it again on its next lease renewal. From
-- then on the job can only end succeeded (the handler finished anyway) or
-- cancelled.
ALTER TABLE jobs ADD COLUMN cancel_requested_at timestamptz;

-- The job's execution timeout per attempt; NULL: the worker's default
-- (JOBS_WORKER_JOB_TIMEOUT_MS).
ALTER TABLE jobs ADD COLUMN timeout_ms integer CHECK (timeout_ms BETWEEN 1 AND 86400000);
