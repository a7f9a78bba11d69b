-- The W3C trace id of the request that submitted the job (common/trace.hpp),
-- so that the worker's log lines for the job carry it. NULL for jobs from
-- before this column.
ALTER TABLE jobs ADD COLUMN trace_id text;
