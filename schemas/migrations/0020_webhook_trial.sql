-- The circuit breaker's half-open state (workers/webhooks/endpoints.hpp):
-- once an endpoint's pause is over, one delivery at a time is sent as a
-- trial, until this time (its deadline and a margin); the endpoint's other
-- jobs wait for its outcome. A success resets the breaker, a failure
-- pauses the endpoint again; either clears it.
ALTER TABLE webhook_endpoints ADD COLUMN trial_until timestamptz;
