-- Per-tenant caps on running jobs (common/tenant_caps.hpp): a row here
-- overrides JOBS_TENANT_MAX_RUNNING for its tenant; 0 means no cap.
-- The running jobs of a tenant are counted with jobs_tenant_state.

CREATE TABLE tenant_limits (
  tenant_id   text PRIMARY KEY,
  max_running integer NOT NULL CHECK (max_running >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
