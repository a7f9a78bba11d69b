-- The circuit breaker's half-open state (workers/webhooks/endpoints.hpp):
-- when an endpoint's pause ends, one delivery (the trial) goes out alone
-- while the others wait. trial_until is the trial's lease, whole
-- milliseconds: the endpoint's waiting jobs are snoozed until exactly then.
ALTER TABLE webhook_endpoints ADD COLUMN trial_until timestamptz;
