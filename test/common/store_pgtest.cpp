// common/store.hpp and migrations against a live PostgreSQL.
#include "common/admin_store.hpp"
#include "common/db.hpp"
#include "common/keys.hpp"
#include "common/store.hpp"
#include "support/live.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>

#include <future>
#include <thread>

using namespace jobs;
using namespace jobs::test;
using namespace std::chrono_literals;

namespace {

new_job make_job(const std::string& tenant) {
  auto j = sample_job(tenant);
  j.payload_json = R"({"echo":"x"})";
  return j;
}

std::string insert(pqxx::connection& c, new_job j) {
  pqxx::work w(c);
  std::vector<new_job> rows{j};
  insert_jobs(w, rows);
  w.commit();
  return j.id.value;
}

std::string state_of(pqxx::connection& c, const std::string& id) {
  pqxx::nontransaction n(c);
  return n.exec_params("SELECT state::text FROM jobs WHERE id = $1::uuid", id)[0][0]
      .as<std::string>();
}

}  // namespace

TEST_CASE("migrations apply once even when several processes start at once") {
  scratch s;  // already migrated once
  std::vector<std::thread> ts;
  std::atomic<int> applied{0}, errors{0};
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] {
      try {
        auto c = pg_connect(s.pg_url);
        applied += apply_migrations(*c, std::string(JOBS_SOURCE_DIR) + "/schemas/migrations");
      } catch (const std::exception&) {
        ++errors;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(errors == 0);
  CHECK(applied == 0);
  auto c = pg_connect(s.pg_url);
  pqxx::nontransaction n(*c);
  CHECK(n.exec("SELECT count(*) FROM schema_migrations")[0][0].as<int>() >= 1);
}

TEST_CASE("claims and completions are compare-and-set") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto id = insert(*c, make_job("acme"));
  std::vector<std::string> ids{id};

  std::vector<claimed_job> first;
  {
    pqxx::work w1(*c);
    first = claim_jobs(w1, ids, "w1", 60s);
    w1.commit();
  }
  REQUIRE(first.size() == 1);
  CHECK(first[0].attempt == 1);
  CHECK(first[0].payload_json == R"({"echo": "x"})");
  CHECK(state_of(*c, id) == "running");

  SUBCASE("a second claim (a redelivery) gets nothing while the lease holds") {
    pqxx::work w2(*c);
    CHECK(claim_jobs(w2, ids, "w2", 60s).empty());
  }
  SUBCASE("the holder's own claim again (its commit went unconfirmed) takes it back, uncounted") {
    pqxx::work w2(*c);
    auto again = claim_jobs(w2, ids, "w1", 60s);
    w2.commit();
    REQUIRE(again.size() == 1);
    CHECK(again[0].attempt == 1);
    pqxx::nontransaction n(*c);
    CHECK(n.exec_params("SELECT attempts FROM jobs WHERE id = $1::uuid", id)[0][0].as<int>() == 1);
  }
  SUBCASE("a completion from another worker or attempt does not land") {
    pqxx::work w2(*c);
    std::vector<job_outcome> o{{id, 1, job_state::succeeded, "{}", "", ""}};
    CHECK(complete_jobs(w2, o, "w2").empty());
    std::vector<job_outcome> o2{{id, 2, job_state::succeeded, "{}", "", ""}};
    CHECK(complete_jobs(w2, o2, "w1").empty());
    w2.commit();
    CHECK(state_of(*c, id) == "running");
  }
  SUBCASE("the owner's completion lands once, with an attempt row") {
    pqxx::work w2(*c);
    std::vector<job_outcome> o{{id, 1, job_state::succeeded, R"({"ok":true})", "", ""}};
    CHECK(complete_jobs(w2, o, "w1").size() == 1);
    CHECK(complete_jobs(w2, o, "w1").empty());  // twice: no second landing
    w2.commit();
    CHECK(state_of(*c, id) == "succeeded");
    {
      pqxx::work w3(*c);
      CHECK(claim_jobs(w3, ids, "w3", 60s).empty());  // finished jobs are never claimed again
    }
    pqxx::nontransaction n(*c);
    CHECK(n.exec("SELECT count(*) FROM job_attempts")[0][0].as<int>() == 1);
  }
  SUBCASE("an expired lease lets another worker take the job, and the old owner can't complete") {
    {
      pqxx::nontransaction n(*c);
      n.exec_params(
          "UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1::uuid", id);
    }
    pqxx::work w2(*c);
    auto again = claim_jobs(w2, ids, "w2", 60s);
    REQUIRE(again.size() == 1);
    CHECK(again[0].attempt == 2);
    std::vector<job_outcome> late{{id, 1, job_state::succeeded, "{}", "", ""}};
    CHECK(complete_jobs(w2, late, "w1").empty());
    w2.commit();
  }
  SUBCASE("a failed attempt is recorded with its error and a retry time") {
    pqxx::work w2(*c);
    std::vector<job_outcome> o{{id, 1, job_state::failed, "", "boom", "2030-01-01T00:00:00Z"}};
    CHECK(complete_jobs(w2, o, "w1").size() == 1);
    w2.commit();
    pqxx::nontransaction n(*c);
    auto r = n.exec_params(
        "SELECT state::text, last_error, run_at = '2030-01-01Z' FROM jobs WHERE id = $1::uuid", id);
    CHECK(r[0][0].as<std::string>() == "failed");
    CHECK(r[0][1].as<std::string>() == "boom");
    CHECK(r[0][2].as<bool>());
  }
  SUBCASE("a success clears the error an earlier attempt left; the attempts keep theirs") {
    {
      pqxx::work w2(*c);
      std::vector<job_outcome> o{{id, 1, job_state::failed, "", "boom", "2000-01-01T00:00:00Z"}};
      REQUIRE(complete_jobs(w2, o, "w1").size() == 1);
      w2.commit();
    }
    {
      pqxx::work w3(*c);
      auto again = claim_jobs(w3, ids, "w2", 60s);
      REQUIRE(again.size() == 1);
      CHECK(again[0].attempt == 2);
      std::vector<job_outcome> o{{id, 2, job_state::succeeded, R"({"ok":true})", "", ""}};
      REQUIRE(complete_jobs(w3, o, "w2").size() == 1);
      w3.commit();
    }
    // The API's view first (its own transaction), then the rows.
    auto shown = find_job_json(*c, tenant_id{"acme"}, job_id{id});
    REQUIRE(shown);
    auto job = boost::json::parse(*shown).as_object();
    CHECK(job.at("state") == "succeeded");
    CHECK(job.at("error").is_null());
    pqxx::nontransaction n(*c);
    auto r =
        n.exec_params("SELECT state::text, last_error IS NULL FROM jobs WHERE id = $1::uuid", id);
    CHECK(r[0][0].as<std::string>() == "succeeded");
    CHECK(r[0][1].as<bool>());
    auto attempts = n.exec_params(
        "SELECT attempt, outcome::text, coalesce(error, '') FROM job_attempts "
        "WHERE job_id = $1::uuid ORDER BY attempt",
        id);
    REQUIRE(attempts.size() == 2);
    CHECK(attempts[0][1].as<std::string>() == "failed");
    CHECK(attempts[0][2].as<std::string>() == "boom");
    CHECK(attempts[1][1].as<std::string>() == "succeeded");
    CHECK(attempts[1][2].as<std::string>().empty());
  }
}

TEST_CASE("a worker's round completes and claims in one statement, as the two calls would") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto a = insert(*c, make_job("acme"));
  auto b = insert(*c, make_job("acme"));
  auto gone = insert(*c, make_job("acme"));
  auto other = insert(*c, make_job("acme"));
  {
    pqxx::work w(*c);
    std::vector<std::string> held{a, other};
    REQUIRE(claim_jobs(w, held, "w1", 60s).size() == 2);
    w.exec_params("UPDATE jobs SET state = 'cancelled' WHERE id = $1::uuid", gone);
    w.commit();
  }
  // a succeeded; `other` reported by a worker that does not hold it; b
  // claimable, `gone` cancelled.
  std::vector<job_outcome> outcomes{{a, 1, job_state::succeeded, R"({"n":1})", "", ""},
                                    {other, 1, job_state::succeeded, "{}", "", ""}};
  std::vector<std::string> wanted{b, gone};
  auto worker_conn = pg_connect(s.pg_url);  // the worker's own, as in workers/
  pqxx::nontransaction n(*worker_conn);
  std::vector<job_outcome> mine{outcomes[0]};
  auto r = complete_and_claim(n, mine, wanted, "w1", 60s);
  CHECK(r.completed == std::vector<std::string>{a});
  REQUIRE(r.claimed.size() == 1);
  CHECK(r.claimed[0].id == b);
  CHECK(r.claimed[0].attempt == 1);
  CHECK(r.claimed[0].payload_json == R"({"echo": "x"})");
  CHECK(r.claimed[0].max_attempts > 0);
  auto again = complete_and_claim(n, outcomes, std::vector<std::string>{gone}, "w2", 60s);
  CHECK(again.completed.empty());
  CHECK(again.claimed.empty());
  CHECK(state_of(*c, a) == "succeeded");
  CHECK(state_of(*c, b) == "running");
  CHECK(state_of(*c, gone) == "cancelled");
  CHECK(state_of(*c, other) == "running");
  CHECK(n.exec("SELECT count(*) FROM job_attempts")[0][0].as<int>() == 1);
  CHECK(n.exec_params("SELECT result::text FROM jobs WHERE id = $1::uuid", a)[0][0]
            .as<std::string>() == R"({"n": 1})");
  auto held = n.exec_params(
      "SELECT worker_id, lease_expires_at > now() + interval '50 seconds' FROM jobs "
      "WHERE id = $1::uuid",
      b);
  CHECK(held[0][0].as<std::string>() == "w1");
  CHECK(held[0][1].as<bool>());
  auto attempt = n.exec_params(
      "SELECT worker_id, attempt, outcome::text FROM job_attempts WHERE job_id = $1::uuid", a);
  REQUIRE(attempt.size() == 1);
  CHECK(attempt[0][0].as<std::string>() == "w1");
  CHECK(attempt[0][1].as<int>() == 1);
  CHECK(attempt[0][2].as<std::string>() == "succeeded");
  SUBCASE("a job named by both is completed, not taken back by the claim") {
    auto late = insert(*c, make_job("acme"));
    std::vector<job_outcome> done_b{{b, 1, job_state::succeeded, "{}", "", ""}};
    auto both = complete_and_claim(n, done_b, std::vector<std::string>{b, late}, "w1", 60s);
    CHECK(both.completed == std::vector<std::string>{b});
    REQUIRE(both.claimed.size() == 1);
    CHECK(both.claimed[0].id == late);
    CHECK(state_of(*c, b) == "succeeded");
  }
  SUBCASE("the same round sent again (its reply lost) lands nothing twice, counts no attempt") {
    auto again = complete_and_claim(n, mine, wanted, "w1", 60s);
    CHECK(again.completed.empty());
    REQUIRE(again.claimed.size() == 1);
    CHECK(again.claimed[0].id == b);
    CHECK(again.claimed[0].attempt == 1);
    CHECK(n.exec("SELECT count(*) FROM job_attempts")[0][0].as<int>() == 1);
  }
  SUBCASE("either half alone") {
    std::vector<job_outcome> done_b{{b, 1, job_state::failed, "", "boom", "2030-01-01T00:00:00Z"}};
    auto only_done = complete_and_claim(n, done_b, {}, "w1", 60s);
    CHECK(only_done.completed == std::vector<std::string>{b});
    CHECK(only_done.claimed.empty());
    CHECK(state_of(*c, b) == "failed");
    auto late = insert(*c, make_job("acme"));
    auto only_claim = complete_and_claim(n, {}, std::vector<std::string>{late}, "w1", 60s);
    CHECK(only_claim.completed.empty());
    REQUIRE(only_claim.claimed.size() == 1);
    CHECK(only_claim.claimed[0].id == late);
  }
}

TEST_CASE("two schedulers never lock the same due job") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  for (int i = 0; i < 20; ++i) {
    auto j = make_job("acme");
    j.state = job_state::scheduled;
    j.run_at = "2020-01-01T00:00:00Z";
    insert(*c, j);
  }
  auto c2 = pg_connect(s.pg_url);
  pqxx::work a(*c), b(*c2);
  auto first = lock_due_jobs(a, 12);
  auto second = lock_due_jobs(b, 12);
  CHECK(first.size() == 12);
  CHECK(second.size() == 8);
  for (const auto& x : first)
    for (const auto& y : second) CHECK(x.id != y.id);
}

TEST_CASE("a scheduler round's first statement names exactly the kinds that have work") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto todo = [&] {
    auto r = pending_round_work(*c);
    return std::vector<bool>{r.due, r.unconfirmed, r.lost};
  };
  CHECK(todo() == std::vector<bool>{false, false, false});

  // Scheduled for later, queued, or running on a live lease: nothing to do.
  auto later = make_job("acme");
  later.state = job_state::scheduled;
  later.run_at = "2999-01-01T00:00:00Z";
  insert(*c, later);
  auto queued = insert(*c, make_job("acme"));
  auto running = insert(*c, make_job("acme"));
  {
    pqxx::work w(*c);
    std::vector<std::string> ids{running};
    REQUIRE(claim_jobs(w, ids, "w1", 60s).size() == 1);
    w.commit();
  }
  CHECK(todo() == std::vector<bool>{false, false, false});

  // A due job.
  auto due = make_job("acme");
  due.state = job_state::scheduled;
  due.run_at = "2020-01-01T00:00:00Z";
  auto due_id = insert(*c, due);
  CHECK(todo() == std::vector<bool>{true, false, false});
  {
    pqxx::work w(*c);
    std::vector<std::string> ids{due_id};
    mark_queued(w, ids);
    w.commit();
  }
  CHECK(todo() == std::vector<bool>{false, false, false});

  // A publish batch past its deadline (the API died before the confirms).
  {
    pqxx::work w(*c);
    std::vector<std::string> ids{queued};
    record_publish_batch(w, ids, 0ms);
    w.commit();
  }
  std::this_thread::sleep_for(20ms);
  CHECK(todo() == std::vector<bool>{false, true, false});
  {
    pqxx::work w(*c);
    auto u = lock_unconfirmed_jobs(w, 10);
    settle_publish_batches(w, u.batches);
    w.commit();
  }
  CHECK(todo() == std::vector<bool>{false, false, false});

  // A running job whose lease expired (its worker died).
  {
    pqxx::work w(*c);
    std::vector<std::string> ids{queued};
    REQUIRE(claim_jobs(w, ids, "w2", 1ms).size() == 1);
    w.commit();
  }
  std::this_thread::sleep_for(20ms);
  CHECK(todo() == std::vector<bool>{false, false, true});
}

TEST_CASE("reads are scoped to the tenant and paginate newest first") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(insert(*c, make_job("acme")));
  auto other = insert(*c, make_job("globex"));

  CHECK(find_job_json(*c, tenant_id{"acme"}, job_id{ids[0]}).has_value());
  CHECK_FALSE(find_job_json(*c, tenant_id{"acme"}, job_id{other}).has_value());
  CHECK_FALSE(find_job_json(*c, tenant_id{"acme"}, job_id{"not-a-uuid"}).has_value());

  job_filter f;
  f.limit = 3;
  auto page1 = boost::json::parse(list_jobs_json(*c, tenant_id{"acme"}, f));
  auto& jobs1 = page1.at("jobs").as_array();
  REQUIRE(jobs1.size() == 3);
  CHECK(jobs1[0].at("id").as_string() == ids[4]);
  auto cursor = std::string(page1.at("next_cursor").as_string());
  f.before = cursor;
  auto page2 = boost::json::parse(list_jobs_json(*c, tenant_id{"acme"}, f));
  CHECK(page2.at("jobs").as_array().size() == 2);
  CHECK(page2.at("next_cursor").is_null());
  job_filter dead;
  dead.state = "dead";
  auto none = boost::json::parse(list_jobs_json(*c, tenant_id{"acme"}, dead));
  CHECK(none.at("jobs").as_array().empty());
}

TEST_CASE("the job list merges every state newest first, reading an index, not the table") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(insert(*c, make_job("acme")));
  const char* states[] = {"succeeded", "dead", "queued", "running", "succeeded", "failed"};
  {
    pqxx::nontransaction n(*c);
    for (int i = 0; i < 6; ++i)
      n.exec_params("UPDATE jobs SET state = $2::job_state WHERE id = $1::uuid", ids[i], states[i]);
  }
  auto page = [&](job_filter f) {
    std::vector<std::string> got;
    auto doc = boost::json::parse(list_jobs_json(*c, tenant_id{"acme"}, f));
    for (const auto& j : doc.at("jobs").as_array())
      got.emplace_back(j.at("id").as_string().c_str());
    auto next = doc.at("next_cursor");
    return std::pair{got, next.is_null() ? std::string() : std::string(next.as_string())};
  };
  job_filter f;
  f.limit = 4;
  auto [first, cursor] = page(f);
  CHECK(first == std::vector<std::string>{ids[5], ids[4], ids[3], ids[2]});
  f.before = cursor;
  auto [second, end] = page(f);
  CHECK(second == std::vector<std::string>{ids[1], ids[0]});
  CHECK(end.empty());
  job_filter succeeded;
  succeeded.state = "succeeded";
  CHECK(page(succeeded).first == std::vector<std::string>{ids[4], ids[0]});
  // A search finds a job by its id, or the id's first 8 or more characters
  // in any case; fewer are searched for only in payloads and errors.
  job_filter by_id;
  by_id.text = ids[3];
  CHECK(page(by_id).first == std::vector<std::string>{ids[3]});
  by_id.text = ids[3].substr(0, 13);  // the time part of a UUIDv7: the jobs of that millisecond
  auto near = page(by_id).first;
  CHECK(std::find(near.begin(), near.end(), ids[3]) != near.end());
  for (auto& ch : by_id.text) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  CHECK(page(by_id).first == near);
  by_id.text = ids[3].substr(0, 7);
  CHECK(page(by_id).first.empty());

  // 30,000 more rows: a page of 50 must come from jobs_tenant_state, in
  // order, not from reading and sorting the tenant's rows (as when the
  // ORDER BY named the text form of the id).
  pqxx::nontransaction n(*c);
  n.exec(R"(INSERT INTO jobs (id, tenant_id, queue, type, payload, state)
            SELECT gen_random_uuid(), 'acme', 'processing', 'echo', '{}',
                   (ARRAY['succeeded', 'queued', 'dead'])[1 + g % 3]::job_state
            FROM generate_series(1, 30000) g)");
  n.exec("ANALYZE jobs");
  auto plan = n.exec_params("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + list_jobs_statement(),
                            "acme", "", "", "", 51, "", "", "", "")[0][0]
                  .as<std::string>();
  auto read = plan_pages(s.pg_url, plan, "jobs");
  INFO(plan);
  INFO("blocks read: " << read.blocks << ", table: " << read.table);
  CHECK(read.blocks * 4 < read.table);  // 69 of 460 pages when written
}

TEST_CASE("API keys are stored hashed and resolve to their tenant") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto key = create_api_key(*c, tenant_id{"acme"}, "ci", "submitter");
  CHECK(key.starts_with("jk_"));
  auto who = authenticate_key(*c, key);
  REQUIRE(who);
  CHECK(who->tenant.value == "acme");
  CHECK(who->role == "submitter");
  CHECK_FALSE(authenticate_key(*c, key + "x"));
  {
    pqxx::nontransaction n(*c);
    CHECK(n.exec_params("SELECT count(*) FROM api_keys WHERE key_hash = convert_to($1, 'UTF8')",
                        key)[0][0]
              .as<int>() == 0);
    n.exec("UPDATE api_keys SET revoked_at = now()");
  }
  CHECK_FALSE(authenticate_key(*c, key));
}

TEST_CASE("the last usable admin key of a tenant is not revoked, however the revokes race") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto id_of = [&](const std::string& role, const std::string& tenant = "acme") {
    auto doc = boost::json::parse(create_api_key_json(*c, tenant_id{tenant}, "k", role, ""));
    return std::string(doc.at("id").as_string());
  };
  auto a = id_of("admin"), b = id_of("admin"), expired = id_of("admin"), sub = id_of("submitter");
  id_of("admin", "other");  // another tenant's admin keys do not count
  {
    pqxx::nontransaction n(*c);
    n.exec_params("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1",
                  expired);
  }
  CHECK(revoke_api_key(*c, tenant_id{"acme"}, sub));
  // a and b revoked at once from two connections: one goes, one stays.
  std::promise<void> go;
  auto start = go.get_future().share();
  auto revoke = [&](std::string id) {
    auto own = pg_connect(s.pg_url);
    start.wait();
    try {
      return revoke_api_key(*own, tenant_id{"acme"}, id).has_value() ? 1 : 0;
    } catch (const last_admin_key&) {
      return 0;
    }
  };
  auto ra = std::async(std::launch::async, revoke, a);
  auto rb = std::async(std::launch::async, revoke, b);
  go.set_value();
  int a_went = ra.get(), b_went = rb.get();
  CHECK(a_went + b_went == 1);
  auto left = a_went ? b : a, gone = a_went ? a : b;
  auto live = [&] {
    pqxx::nontransaction n(*c);
    return n
        .exec(
            "SELECT count(*) FROM api_keys WHERE tenant_id = 'acme' AND role = 'admin' "
            "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())")[0][0]
        .as<int>();
  };
  CHECK(live() == 1);
  // The expired one does not count, and revoking it (or a revoked one) is fine.
  CHECK(revoke_api_key(*c, tenant_id{"acme"}, expired));
  CHECK(revoke_api_key(*c, tenant_id{"acme"}, gone));
  CHECK_THROWS_AS(revoke_api_key(*c, tenant_id{"acme"}, left), last_admin_key);
  CHECK(live() == 1);
  // A second admin key that expires does not outlast the one without an
  // expiry: that one stays (the tenant would be locked out at the expiry);
  // the expiring one can go.
  auto soon = boost::json::parse(
      create_api_key_json(*c, tenant_id{"acme"}, "k", "admin", "2100-01-01T00:00:00Z"));
  std::string soon_id(soon.at("id").as_string());
  CHECK_THROWS_AS(revoke_api_key(*c, tenant_id{"acme"}, left), last_admin_key);
  CHECK(revoke_api_key(*c, tenant_id{"acme"}, soon_id));
  // Two that expire: the one expiring later stays, the sooner can go.
  auto later = boost::json::parse(
      create_api_key_json(*c, tenant_id{"other"}, "k", "admin", "2100-01-02T00:00:00Z"));
  auto sooner = boost::json::parse(
      create_api_key_json(*c, tenant_id{"other"}, "k", "admin", "2100-01-01T00:00:00Z"));
  {
    pqxx::nontransaction n(*c);
    n.exec(
        "UPDATE api_keys SET revoked_at = now() WHERE tenant_id = 'other' AND expires_at IS NULL");
  }
  CHECK_THROWS_AS(revoke_api_key(*c, tenant_id{"other"}, std::string(later.at("id").as_string())),
                  last_admin_key);
  CHECK(revoke_api_key(*c, tenant_id{"other"}, std::string(sooner.at("id").as_string())));
}

TEST_CASE("a claim racing the scheduler's publish waits for its commit and takes the job") {
  scratch s;
  auto scheduler_conn = pg_connect(s.pg_url);
  auto j = make_job("acme");
  j.state = job_state::scheduled;
  j.run_at = "2020-01-01T00:00:00Z";
  auto id = insert(*scheduler_conn, j);

  // The scheduler holds the due row while it publishes…
  pqxx::work sched(*scheduler_conn);
  auto due = lock_due_jobs(sched, 10);
  REQUIRE(due.size() == 1);
  // …and the worker, which already got the message, claims meanwhile.
  std::promise<std::size_t> claimed;
  auto result = claimed.get_future();
  std::thread worker([&] {
    auto c = pg_connect(s.pg_url);
    pqxx::work w(*c);
    std::vector<std::string> ids{id};
    claimed.set_value(claim_jobs(w, ids, "w1", 60s).size());
    w.commit();
  });
  CHECK(result.wait_for(300ms) == std::future_status::timeout);  // blocked on the row lock
  std::vector<std::string> ids{id};
  mark_queued(sched, ids);
  sched.commit();
  REQUIRE(result.wait_for(10s) == std::future_status::ready);
  CHECK(result.get() == 1);
  worker.join();
  CHECK(state_of(*scheduler_conn, id) == "running");
  // The claim's transaction began before the scheduler's event was written;
  // its start is taken once the lock is had, so the timeline stays in order.
  auto json = job_events_json(*scheduler_conn, tenant_id{"acme"}, job_id{id});
  REQUIRE(json);
  std::vector<std::string> steps;
  auto doc = boost::json::parse(*json);
  for (const auto& e : doc.at("events").as_array())
    steps.push_back(std::string(e.at("to").as_string()));
  CHECK(steps == std::vector<std::string>{"scheduled", "queued", "running"});
}

TEST_CASE("a job's timeline: job_events for the rest, job_attempts for each attempt") {
  scratch s;
  auto c = pg_connect(s.pg_url);
  auto id = insert(*c, make_job("acme"));
  std::vector<std::string> ids{id};
  auto claim = [&](const std::string& worker) {
    pqxx::work w(*c);
    auto got = claim_jobs(w, ids, worker, 60s);
    w.commit();
    return got;
  };
  auto complete = [&](const std::string& worker, job_outcome o) {
    pqxx::work w(*c);
    std::vector<job_outcome> os{std::move(o)};
    auto landed = complete_jobs(w, os, worker);
    w.commit();
    return landed.size();
  };
  REQUIRE(claim("w1").size() == 1);
  REQUIRE(complete("w1", {id, 1, job_state::failed, "", "boom", "2020-01-01T00:00:00Z"}) == 1);
  {
    pqxx::work w(*c);
    mark_queued(w, ids);  // what the scheduler does when the retry is due
    w.commit();
  }
  REQUIRE(claim("w2").size() == 1);

  auto timeline = [&] {
    auto json = job_events_json(*c, tenant_id{"acme"}, job_id{id});
    REQUIRE(json);
    std::vector<std::string> steps;
    auto doc = boost::json::parse(*json);
    for (const auto& e : doc.at("events").as_array()) {
      const auto& o = e.as_object();
      auto from = o.at("from").is_null() ? std::string("-") : std::string(o.at("from").as_string());
      steps.push_back(from + ">" + std::string(o.at("to").as_string()) + "#" +
                      std::to_string(o.at("attempt").as_int64()));
    }
    return steps;
  };
  // The attempt running now shows from the jobs row.
  CHECK(timeline() == std::vector<std::string>{"->queued#0", "queued>running#1", "running>failed#1",
                                               "failed>queued#1", "queued>running#2"});
  REQUIRE(complete("w2", {id, 2, job_state::succeeded, "{}", "", ""}) == 1);
  CHECK(timeline() == std::vector<std::string>{"->queued#0", "queued>running#1", "running>failed#1",
                                               "failed>queued#1", "queued>running#2",
                                               "running>succeeded#2"});
  {  // An attempt's start and end both name its worker.
    std::vector<std::string> workers;
    auto doc = boost::json::parse(*job_events_json(*c, tenant_id{"acme"}, job_id{id}));
    for (const auto& e : doc.at("events").as_array()) {
      const auto& w = e.at("worker_id");
      workers.push_back(w.is_null() ? "-" : std::string(w.as_string()));
    }
    CHECK(workers == std::vector<std::string>{"-", "w1", "w1", "-", "w2", "w2"});
  }
  CHECK_FALSE(job_events_json(*c, tenant_id{"other"}, job_id{id}));
  // Only the changes outside the attempts are event rows, and the
  // submission into `queued` is none: the jobs row implies it.
  pqxx::nontransaction n(*c);
  CHECK(n.exec("SELECT count(*) FROM job_events")[0][0].as<int>() == 1);
  CHECK(n.exec("SELECT count(*) FROM job_attempts WHERE queue = 'processing'")[0][0].as<int>() ==
        2);
}

TEST_CASE("timestamps leave PostgreSQL in UTC, whatever the database's time zone") {
  scratch s;
  {
    auto admin = pg_connect(s.pg_url);
    pqxx::nontransaction n(*admin);
    auto db = n.exec("SELECT current_database()")[0][0].as<std::string>();
    n.exec("ALTER DATABASE " + admin->quote_name(db) + " SET timezone = 'Asia/Kolkata'");
  }
  auto c = pg_connect(s.pg_url);  // a new session, whose default is that zone
  auto id = insert(*c, make_job("acme"));
  auto json = find_job_json(*c, tenant_id{"acme"}, job_id{id});
  REQUIRE(json);
  auto created = std::string(boost::json::parse(*json).at("created_at").as_string());
  CAPTURE(created);
  CHECK(created.ends_with("+00:00"));
}
