-- jobs_tenant_id (tenant_id, id DESC) goes. A state change cannot be a HOT
-- update (state is indexed), so each of a job's three row versions added an
-- entry to every index: this one cost about a tenth of PostgreSQL's CPU per
-- job (scripts/bench, README "Performance"). GET /v1/jobs reads
-- jobs_tenant_state instead, one ordered branch per state, merged
-- (common/store.cpp, list_jobs_statement).
DROP INDEX jobs_tenant_id;
