-- The system of record: tenants, API keys, jobs and their attempts.
-- Job states and their legal transitions: common/job.hpp.

CREATE TABLE tenants (
  id         text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,64}$'),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Keys are stored as SHA-256 of the whole key; `prefix` (the first
-- characters) lets people tell keys apart without revealing them.
CREATE TABLE api_keys (
  id         bigserial PRIMARY KEY,
  key_hash   bytea NOT NULL UNIQUE,
  prefix     text NOT NULL,
  tenant_id  text NOT NULL REFERENCES tenants (id),
  name       text NOT NULL DEFAULT '',
  role       text NOT NULL DEFAULT 'admin' CHECK (role IN ('submitter', 'viewer', 'admin')),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz
);

CREATE TYPE job_state AS ENUM
  ('scheduled', 'queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled');

CREATE TABLE jobs (
  id               uuid PRIMARY KEY,          -- UUIDv7: time ordered
  tenant_id        text NOT NULL,
  queue            text NOT NULL,
  type             text NOT NULL,
  payload          jsonb NOT NULL,
  state            job_state NOT NULL,
  priority         smallint NOT NULL DEFAULT 0,
  attempts         integer NOT NULL DEFAULT 0, -- attempts started so far
  max_attempts     integer NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
  run_at           timestamptz NOT NULL DEFAULT now(),
  created_at       timestamptz NOT NULL DEFAULT now(),
  queued_at        timestamptz,  -- last transition to queued (published)
  started_at       timestamptz,  -- last claim by a worker
  finished_at      timestamptz,  -- reached succeeded, dead or cancelled
  failed_at        timestamptz,  -- last failed attempt
  cancelled_at     timestamptz,
  result           jsonb,
  last_error       text,
  worker_id        text,
  lease_expires_at timestamptz,
  idempotency_key  text,
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX jobs_tenant_id ON jobs (tenant_id, id DESC);
CREATE INDEX jobs_tenant_state ON jobs (tenant_id, state, id DESC);
CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('scheduled', 'failed');
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_idempotency ON jobs (tenant_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- One row per finished attempt: who ran it, when, and how it ended.
CREATE TABLE job_attempts (
  id          bigserial PRIMARY KEY,
  job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt     integer NOT NULL,
  worker_id   text NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT now(),
  outcome     job_state NOT NULL,
  error       text
);
CREATE INDEX job_attempts_job ON job_attempts (job_id, id);
