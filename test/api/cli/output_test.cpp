// ctest-labels: dashboard
// jobsctl's tables and its reading of the API's answers.
#include "api/cli/output.hpp"
#include "api/cli/table.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>

using namespace jobs::cli;
namespace json = boost::json;

TEST_CASE("tables align columns by code points and trim trailing spaces") {
  auto t = format_table({"ID", "STATE", "ERROR"},
                        {{"1", "queued", ""}, {"22", "dead", "b…d\nline"}, {"333", "x"}});
  CHECK(t ==
        "ID   STATE   ERROR\n"
        "1    queued\n"
        "22   dead    b…d line\n"
        "333  x\n");
  CHECK(format_table({"A"}, {}) == "A\n");
}

TEST_CASE("text a submitter wrote cannot drive the terminal: control characters are escaped") {
  CHECK(printable("zz\x1b[41mRED\x1b[0m") == "zz\\x1b[41mRED\\x1b[0m");
  CHECK(printable("a\rb\x07"
                  "c\x7f") == "a\\x0db\\x07c\\x7f");
  CHECK(printable("csi \xc2\x9b"
                  "2J, nbsp \xc2\xa0, é…") == "csi \\u009b2J, nbsp \xc2\xa0, é…");
  CHECK(printable("tab\tand\nline") == "tab\tand\nline");
  CHECK(printable(std::string("nul\0!", 5)) == "nul\\x00!");
  // In a table cell, a field, and anything read from the API's JSON.
  CHECK(format_table({"ERROR"}, {{"x\x1b[31m\ny"}}) == "ERROR\nx\\x1b[31m y\n");
  CHECK(format_fields({{"name", "a\nb\x1b[31m"}}) == "name:  a b\\x1b[31m\n");
  auto o = json::parse(R"({"error":"unknown column \"zz\u001b[41m\""})").as_object();
  CHECK(text(o, "error") == "unknown column \"zz\\x1b[41m\"");
}

TEST_CASE("fields, truncation, times and durations") {
  CHECK(format_fields({{"id", "7"}, {"skipped", ""}, {"state", "dead"}}) ==
        "id:     7\n"
        "state:  dead\n");
  CHECK(clip("abcdef", 4) == "abc…");
  CHECK(clip("abc", 3) == "abc");
  CHECK(clip("ééééé", 3) == "éé…");
  CHECK(display_width("é…x") == 3);
  CHECK(short_time("2026-11-29T09:19:11.123456Z") == "2026-11-29 09:19:11");
  CHECK(short_time("") == "");
  CHECK(short_duration(1.25) == "1.2s");
  CHECK(short_duration(42) == "42s");
  CHECK(short_duration(185) == "3m05s");
  CHECK(short_duration(7300) == "2h01m");
  CHECK(short_duration(200000) == "2d07h");
  CHECK(short_duration(-1) == "-");
}

TEST_CASE("problems say title, status, code, detail and where") {
  http_reply r;
  r.status = 400;
  r.body =
      R"({"type":"urn:jobs:problem:payload_invalid","title":"Payload does not match the job type's schema",)"
      R"("status":400,"code":"payload_invalid","detail":"must be a string","pointer":"/payload/input"})";
  CHECK(describe_problem(r) ==
        "Payload does not match the job type's schema (400 payload_invalid): must be a string "
        "[at /payload/input]");
  r.status = 401;
  r.body = R"({"title":"Missing or invalid API key","status":401,"code":"unauthorized"})";
  CHECK(describe_problem(r) ==
        "Missing or invalid API key (401 unauthorized)\n"
        "hint: check the API key (--key, --key-file or JOBS_API_KEY)");
  r.status = 429;
  r.body = R"({"title":"Too many requests","code":"rate_limited"})";
  r.headers["retry-after"] = "2";
  CHECK(describe_problem(r) == "Too many requests (429 rate_limited); retry after 2 s");
  http_reply proxy{502, "Bad Gateway", "text/html", "<html>down</html>", {}};
  CHECK(describe_problem(proxy) == "HTTP 502 Bad Gateway: <html>down</html>");
}

TEST_CASE("jobs, queues and keys as tables") {
  auto job = json::parse(R"({"id":"j1","queue":"processing","type":"hash","state":"dead",
    "priority":0,"attempts":2,"max_attempts":2,"error":"boom","payload":{"input":"x"},
    "result":null,"timeout_ms":null,"created_at":"2026-11-29T09:00:00.5Z",
    "backoff":{"base_ms":2000,"cap_ms":9000,"jitter":"equal"},
    "attempt_history":[{"life":1,"attempt":1,"outcome":"failed","worker_id":"w1","error":"boom",
      "started_at":"2026-11-29T09:00:01Z","finished_at":"2026-11-29T09:00:02Z"},
      {"life":2,"attempt":1,"outcome":"dead","worker_id":"w2","error":"boom again",
      "started_at":"2026-11-29T10:00:01Z","finished_at":"2026-11-29T10:00:02Z"}]})");
  auto text = format_job(job.as_object());
  CHECK(text.find("attempts:  2/2\n") != std::string::npos);
  CHECK(text.find("backoff:   2000 ms base, 9000 ms cap, equal jitter\n") != std::string::npos);
  CHECK(text.find("payload:   {\"input\":\"x\"}\n") != std::string::npos);
  CHECK(text.find("result") == std::string::npos);
  CHECK(text.find("LIFE  ATTEMPT  OUTCOME  STARTED") != std::string::npos);
  CHECK(text.find(
            "1     1        failed   2026-11-29 09:00:01  2026-11-29 09:00:02  w1      boom\n") !=
        std::string::npos);
  CHECK(text.find("2     1        dead     2026-11-29 10:00:01  2026-11-29 10:00:02  w2      boom "
                  "again") != std::string::npos);

  auto list = format_job_list(json::parse(R"([{"id":"j1","queue":"email","type":"send",
    "state":"queued","attempts":0,"max_attempts":5,"created_at":"2026-11-29T09:00:00Z"}])")
                                  .as_array());
  CHECK(list ==
        "ID  QUEUE  TYPE  STATE   ATTEMPTS  CREATED              FINISHED  ERROR\n"
        "j1  email  send  queued  0/5       2026-11-29 09:00:00\n");

  auto queues = format_queues(json::parse(R"({"queues":[{"name":"processing","ready":12,
    "unacked":3,"consumers":2,"workers":{"running":2,"desired":3,"min":1,"max":8},
    "completed_per_s":41.25,"oldest_waiting_age_s":185.2},{"name":"email","ready":0,
    "unacked":0,"consumers":0,"workers":{"running":1,"desired":0,"min":0,"max":4,"supervised":false},
    "completed_per_s":0,"oldest_waiting_age_s":null},{"name":"webhooks","ready":1,"unacked":0,
    "consumers":0,"completed_per_s":0,"oldest_waiting_age_s":1,"paused":true}]})"));
  CHECK(queues.find("processing         12     3        2          2/3 (1..8)") !=
        std::string::npos);
  CHECK(queues.find("41.2") != std::string::npos);
  CHECK(queues.find("3m05s") != std::string::npos);
  CHECK(queues.find("email              0      0        0          1 (no supervisor)") !=
        std::string::npos);
  CHECK(queues.find("webhooks (paused)  1      0        0          -") != std::string::npos);
  CHECK(queues.find("dead letters") == std::string::npos);  // none counted
  CHECK(format_queues(json::parse(R"({"queues":[],"dead_letters":4})"))
            .ends_with("\n4 dead letters kept in jobs.dead\n"));
  CHECK(format_queues(json::parse(R"({"queues":[],"dead_letters":0})")).find("dead") ==
        std::string::npos);

  auto keys = format_keys(json::parse(R"([{"id":"7","prefix":"jk_3f9a1c","name":"ci",
    "role":"submitter","created_at":"2026-11-29T09:00:00Z","expires_at":null,
    "revoked_at":null}])")
                              .as_array());
  CHECK(keys.find("7   jk_3f9a1c  ci    submitter  2026-11-29 09:00:00") != std::string::npos);
}
