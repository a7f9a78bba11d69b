// Unit tests of the job model (common/job.hpp): the state machine, state
// names, queues, and UUIDv7 job ids.
#include "common/job.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace {

using jobs::job_state;
using enum jobs::job_state;

constexpr std::size_t n_states = jobs::all_job_states.size();

std::string name_of(job_state s) { return std::string(jobs::to_string(s)); }

std::uint64_t hex_value(std::string_view hex) {
  std::uint64_t v = 0;
  for (char c : hex) {
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= static_cast<std::uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= static_cast<std::uint64_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= static_cast<std::uint64_t>(c - 'A' + 10);
    else
      FAIL("not a hex digit: " << c);
  }
  return v;
}

// The first 12 hex digits of a UUIDv7: its 48-bit Unix milliseconds.
std::uint64_t timestamp_of(const std::string& id) {
  return hex_value(id.substr(0, 8) + id.substr(9, 4));
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("all_job_states lists the seven states once, in declaration order") {
  REQUIRE(n_states == 7);
  for (std::size_t i = 0; i < n_states; ++i)
    CHECK(static_cast<std::size_t>(jobs::all_job_states[i]) == i);
}

// The expected moves, written out from the diagram and the doc comments of
// common/job.hpp, plus the moves common/store.hpp documents for the SQL
// ("the SQL claims and completions are written to agree with it"):
//   scheduled -> queued                     the scheduler publishes it at run_at
//   scheduled | failed -> running           a worker claims a due job whose message
//                                           arrived before the scheduler's commit
//   queued    -> running                    a worker claims it
//   running   -> succeeded | failed | dead  the attempt completes
//   running   -> scheduled                  a snooze (workers/handler.hpp:
//                                           "error::snooze -> back to scheduled";
//                                           store.hpp: job_outcome "scheduled")
//   running   -> queued                     rescued: its worker died and the lease expired
//   failed    -> queued                     the retry is published when due
//                                           (store.hpp: lock_due_jobs/mark_queued)
//   dead | failed -> scheduled              an explicit client retry, published at once
//   any non-final -> cancelled
// Nothing else, and no state moves to itself.
TEST_CASE("can_transition matches the full table of legal moves") {
  constexpr bool T = true;
  constexpr bool F = false;
  // Rows: from; columns: to. Order: scheduled, queued, running, succeeded, failed, dead, cancelled.
  constexpr bool expected[n_states][n_states] = {
      /* scheduled */ {F, T, T, F, F, F, T},
      /* queued    */ {F, F, T, F, F, F, T},
      /* running   */ {T, T, F, T, T, T, T},
      /* succeeded */ {F, F, F, F, F, F, F},
      /* failed    */ {T, T, T, F, F, F, T},
      /* dead      */ {T, F, F, F, F, F, F},
      /* cancelled */ {F, F, F, F, F, F, F},
  };
  int checked = 0;
  for (std::size_t f = 0; f < n_states; ++f) {
    for (std::size_t t = 0; t < n_states; ++t) {
      auto from = jobs::all_job_states[f];
      auto to = jobs::all_job_states[t];
      CAPTURE(name_of(from));
      CAPTURE(name_of(to));
      CHECK(jobs::can_transition(from, to) == expected[f][t]);
      ++checked;
    }
  }
  CHECK(checked == 49);
}

TEST_CASE("no state transitions to itself") {
  for (auto s : jobs::all_job_states) {
    CAPTURE(name_of(s));
    CHECK_FALSE(jobs::can_transition(s, s));
  }
}

TEST_CASE("final states have no way out except a client retry of a dead job") {
  for (auto to : jobs::all_job_states) {
    CAPTURE(name_of(to));
    CHECK_FALSE(jobs::can_transition(succeeded, to));
    CHECK_FALSE(jobs::can_transition(cancelled, to));
    CHECK(jobs::can_transition(dead, to) == (to == scheduled));
  }
}

TEST_CASE("every non-final state can be cancelled, no final one") {
  for (auto s : jobs::all_job_states) {
    CAPTURE(name_of(s));
    CHECK(jobs::can_transition(s, cancelled) == !jobs::is_final(s));
  }
}

TEST_CASE("is_final and is_claimable for each state") {
  struct row {
    job_state state;
    bool final_;
    bool claimable;
  };
  const row rows[] = {
      {scheduled, false, false}, {queued, false, true},  {running, false, false},
      {succeeded, true, false},  {failed, false, false}, {dead, true, false},
      {cancelled, true, false},
  };
  REQUIRE(std::size(rows) == n_states);
  for (const auto& r : rows) {
    CAPTURE(name_of(r.state));
    CHECK(jobs::is_final(r.state) == r.final_);
    CHECK(jobs::is_claimable(r.state) == r.claimable);
  }
}

TEST_CASE("to_string gives the documented names and parse_job_state reverses it") {
  const std::pair<job_state, std::string_view> names[] = {
      {scheduled, "scheduled"}, {queued, "queued"}, {running, "running"},
      {succeeded, "succeeded"}, {failed, "failed"}, {dead, "dead"},
      {cancelled, "cancelled"},
  };
  for (const auto& [state, name] : names) {
    CHECK(jobs::to_string(state) == name);
    auto back = jobs::parse_job_state(name);
    REQUIRE(back.has_value());
    CHECK(*back == state);
  }
  std::set<std::string_view> distinct;
  for (auto s : jobs::all_job_states) distinct.insert(jobs::to_string(s));
  CHECK(distinct.size() == n_states);
}

TEST_CASE("parse_job_state refuses unknown names") {
  for (std::string_view bad : {"", "Queued", "QUEUED", "queued ", " queued", "queue", "canceled",
                               "done", "running\n", "succeededx"}) {
    CAPTURE(bad);
    CHECK_FALSE(jobs::parse_job_state(bad).has_value());
  }
}

TEST_CASE("is_known_queue accepts exactly email, processing and webhooks") {
  CHECK(jobs::is_known_queue("email"));
  CHECK(jobs::is_known_queue("processing"));
  CHECK(jobs::is_known_queue("webhooks"));
  for (std::string_view bad : {"", "Email", "emails", "processing ", "webhook", "dead", "jobs"}) {
    CAPTURE(bad);
    CHECK_FALSE(jobs::is_known_queue(bad));
  }
}

TEST_CASE("new_job_id is a canonical UUIDv7") {
  for (int i = 0; i < 100; ++i) {
    auto before = now_ms();
    auto id = jobs::new_job_id().value;
    auto after = now_ms();
    CAPTURE(id);
    REQUIRE(id.size() == 36);
    CHECK(jobs::is_uuid(id));
    CHECK(id[8] == '-');
    CHECK(id[13] == '-');
    CHECK(id[18] == '-');
    CHECK(id[23] == '-');
    // Version nibble: the first digit of the third group.
    CHECK(id[14] == '7');
    // Variant bits 10xx: the first digit of the fourth group is 8, 9, a or b.
    auto variant = hex_value(id.substr(19, 1));
    CHECK((variant & 0xc) == 0x8);
    // Lower-case hex.
    for (char c : id) CHECK((c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
    // The timestamp is the generation time in Unix milliseconds.
    auto ts = static_cast<std::int64_t>(timestamp_of(id));
    CHECK(ts >= before);
    CHECK(ts <= after);
  }
}

TEST_CASE("new_job_id: 1000 ids are distinct and later ones sort by time") {
  std::vector<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.push_back(jobs::new_job_id().value);
  std::set<std::string> distinct(ids.begin(), ids.end());
  CHECK(distinct.size() == ids.size());
  for (std::size_t i = 1; i < ids.size(); ++i) {
    CAPTURE(ids[i - 1]);
    CAPTURE(ids[i]);
    CHECK(timestamp_of(ids[i]) >= timestamp_of(ids[i - 1]));
    // The timestamp prefix is fixed-width hex, so text order agrees.
    CHECK(ids[i].substr(0, 13) >= ids[i - 1].substr(0, 13));
  }
  // The 74 random bits differ even between ids of the same millisecond.
  std::set<std::string> tails;
  for (const auto& id : ids) tails.insert(id.substr(19));
  CHECK(tails.size() == ids.size());
}

TEST_CASE("is_uuid accepts canonical 8-4-4-4-12 hex in either case") {
  for (std::string_view ok : {
           "01890a5d-ac96-774b-bcce-b302099a8057",
           "01890A5D-AC96-774B-BCCE-B302099A8057",
           "01890a5d-AC96-774b-BCCE-b302099a8057",
           "00000000-0000-0000-0000-000000000000",
           "ffffffff-ffff-ffff-ffff-ffffffffffff",
       }) {
    CAPTURE(ok);
    CHECK(jobs::is_uuid(ok));
  }
}

TEST_CASE("is_uuid rejects everything else") {
  for (std::string_view bad : {
           "",
           "01890a5d-ac96-774b-bcce-b302099a805",     // 35 characters
           "01890a5d-ac96-774b-bcce-b302099a80577",   // 37 characters
           "01890a5dac96774bbcceb302099a80570000",    // 36 hex digits, no dashes
           "01890a5dac96-774b-bcce-b302099a8057-",    // dashes misplaced
           "01890a5d-ac96-774b-bcce_b302099a8057",    // underscore for a dash
           "01890a5g-ac96-774b-bcce-b302099a8057",    // g is not hex
           "01890a5d-ac96-774b-bcce-b302099a805 ",    // trailing space
           " 1890a5d-ac96-774b-bcce-b302099a8057",    // leading space
           "{01890a5d-ac96-774b-bcce-b302099a805}",   // braces
           "01890a5d-ac96-774b-bcce-b302099a8057\n",  // trailing newline
           "0x890a5d-ac96-774b-bcce-b302099a8057",    // 0x prefix
       }) {
    CAPTURE(bad);
    CHECK_FALSE(jobs::is_uuid(bad));
  }
  // A NUL byte in the middle is not a hex digit.
  std::string with_nul = "01890a5d-ac96-774b-bcce-b302099a8057";
  with_nul[3] = '\0';
  CHECK_FALSE(jobs::is_uuid(with_nul));
}
