#pragma once
// Publishes jobs whose time has come: `scheduled` (run_at in the future at
// submission, or snoozed) and `failed` (a retry after backoff).
//
// Each round locks up to `scheduler_batch` due rows with FOR UPDATE SKIP
// LOCKED, publishes them with confirms, marks the confirmed ones `queued`
// and commits. Several API processes may run it at once: a row locked by one
// is skipped by the others, so no job is published twice by two schedulers.
// A worker whose claim reaches a row still locked here waits for the commit
// and then sees it `queued`.
//
// It is also the recovery path: the `queued` jobs of a publish batch whose
// deadline passed unsettled (the API died between its commit and the
// broker's confirms) are published again. And it is the rescuer: a `running` job whose lease
// expired (its worker died, or lost PostgreSQL for longer than the lease) gets an attempt row for
// the lost attempt and is republished, or ends `dead` when it has no attempt left. A late
// completion from the old worker no longer lands.
//
// A round first asks, in one statement outside any transaction, which of
// the three kinds has work (common/store.hpp, pending_round_work), and opens
// a transaction only for those: an idle round is one round trip, not nine.
//
// The API runs one round every `JOBS_SCHEDULER_INTERVAL_MS` in a
// periodic_task (api/periodic_task.hpp), and the next at once when a round
// filled a batch.

#include "queues/publisher.hpp"

#include <pqxx/connection>

namespace jobs {

/// Rows of each kind a round handles at the most.
inline constexpr int scheduler_batch = 500;

/// One round on `c`: due jobs, unconfirmed publish batches, then lost jobs,
/// up to scheduler_batch of each. Returns how many rows it handled; nothing
/// without a broker connection.
int schedule_round(pqxx::connection& c, publisher& pub);

}  // namespace jobs
