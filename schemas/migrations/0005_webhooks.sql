-- Webhook endpoints (workers/webhooks/endpoints.hpp): per tenant, named;
-- a job of webhooks.deliver names one (or uses "default") for its signing
-- secrets, its retry schedule and its circuit breaker. Managed through
-- /v1/webhook-endpoints; secrets are never shown again once set.

CREATE TABLE webhook_endpoints (
  tenant_id            text NOT NULL,
  name                 text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
  -- Standard Webhooks secrets, "whsec_<base64>": one, or two during a rotation.
  secrets              text[] NOT NULL CHECK (cardinality(secrets) BETWEEN 1 AND 2),
  -- Gaps in ms after failed attempt 1, 2, …; NULL: the default schedule.
  retry_schedule_ms    integer[],
  consecutive_failures integer NOT NULL DEFAULT 0,
  paused_until         timestamptz,  -- the circuit breaker's pause
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);
