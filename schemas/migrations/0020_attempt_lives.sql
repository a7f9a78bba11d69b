-- A job's life: 1 when it is submitted, one more each time a dead or failed
-- job is retried through the API (which numbers its attempts from 1 again).
-- Each attempt row records the life it belongs to, so the history tells
-- attempt 1 of the second life from attempt 1 of the first. A constant
-- default: no table rewrite. Rows from before this migration are all life 1.
ALTER TABLE jobs ADD COLUMN life integer NOT NULL DEFAULT 1;
ALTER TABLE job_attempts ADD COLUMN life integer NOT NULL DEFAULT 1;
