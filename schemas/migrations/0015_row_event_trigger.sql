-- Updates record their event from a row trigger whose WHEN clause skips
-- the hot transitions (into and out of `running`), instead of a statement
-- trigger over transition tables. The statement trigger made PostgreSQL
-- copy the old and the new version of every claimed and completed row into
-- tuple stores and join them, to record nothing; a WHEN clause is tested in
-- the executor, and the function only runs for the rarer changes
-- (scheduler, cancels, retries, recovery). Submissions keep their statement
-- trigger: one INSERT records all of a batch's `queued` events at once.
DROP TRIGGER jobs_events_update ON jobs;

CREATE FUNCTION jobs_record_event_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_events (job_id, queue, from_state, to_state, attempt, worker_id)
  VALUES (NEW.id, NEW.queue, OLD.state, NEW.state, NEW.attempts, NULL);
  RETURN NULL;
END $$;

CREATE TRIGGER jobs_events_update AFTER UPDATE OF state ON jobs FOR EACH ROW
  WHEN (OLD.state IS DISTINCT FROM NEW.state
        AND OLD.state <> 'running' AND NEW.state <> 'running')
  EXECUTE FUNCTION jobs_record_event_row();
