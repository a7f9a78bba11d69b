-- Finished jobs are deleted once past their state's retention
-- (common/retention.hpp). The pruner looks for the oldest `finished_at`:
-- a BRIN index finds them by page range and costs the completions almost
-- nothing to keep, unlike a B-tree entry per finished row.
CREATE INDEX jobs_finished ON jobs USING brin (finished_at);
