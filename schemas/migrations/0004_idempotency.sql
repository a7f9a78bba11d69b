-- Idempotent submission (common/idempotency.hpp). jobs.idempotency_key and
-- its unique index per tenant come from 0001; a key now also remembers the
-- request it was first used with, and expires JOBS_IDEMPOTENCY_TTL_MS after
-- its job was created.

-- Hex SHA-256 of the submission's canonical form; set exactly when
-- idempotency_key is.
ALTER TABLE jobs ADD COLUMN request_hash text;

-- The expiry sweep finds the oldest keys without reading keyless jobs.
CREATE INDEX jobs_idempotency_created ON jobs (created_at) WHERE idempotency_key IS NOT NULL;
