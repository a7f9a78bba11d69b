-- Submissions record their `queued`/`scheduled` events in the INSERT
-- statement itself (common/store_submit.cpp, insert_statement), not from a
-- statement trigger: the trigger's transition table cost each group commit
-- about 70 us, a quarter of the INSERT when a commit carries a few rows
-- (scripts/bench at half rate, README "Performance"). The store's INSERT is
-- the only way jobs are created. Changes of state keep their row trigger
-- (0015).
DROP TRIGGER jobs_events_insert ON jobs;
DROP FUNCTION jobs_record_events();
