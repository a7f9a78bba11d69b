// Unit tests of the built-in processing handlers (noop, hash, csv.aggregate),
// the CSV reader under them, and their payload schemas.
#include "workers/processing/processing.hpp"
#include "common/schema.hpp"
#include "workers/handler.hpp"
#include "workers/processing/detail/csv.hpp"

#include <doctest/doctest.h>
#include <boost/json.hpp>
// GCC 12 warns falsely inside std::regex (used by valijson) when optimizing.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <valijson/adapters/boost_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <time.h>
#include <vector>

namespace json = boost::json;
using jobs::handler_error;
using jobs::handler_result;
using jobs::job_context;
using jobs::processing::detail::csv_reader;

namespace {

std::string schema_path(const std::string& type) {
  return std::string(JOBS_SOURCE_DIR) + "/schemas/jobs/processing." + type + ".schema.json";
}

json::value load_schema(const std::string& type) {
  std::ifstream in(schema_path(type));
  REQUIRE_MESSAGE(in, "cannot open " << schema_path(type));
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());  // throws, failing the test, on invalid JSON
}

// Empty when `payload` is valid against the type's schema, else the reasons.
std::string schema_errors(const std::string& type, const json::value& payload) {
  const json::value doc = load_schema(type);
  valijson::Schema schema;
  valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
  valijson::adapters::BoostJsonAdapter schema_adapter(doc);
  parser.populateSchema(schema_adapter, schema);
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::BoostJsonAdapter target(payload);
  if (validator.validate(schema, target, &results)) return {};
  std::string out;
  valijson::ValidationResults::Error e;
  while (results.popError(e)) out += e.description + "; ";
  return out.empty() ? "invalid" : out;
}

handler_result call(const jobs::handler_fn& fn, const json::value& payload,
                    const std::atomic<bool>* cancel = nullptr) {
  job_context ctx{
      "0190aaaa-0000-7000-8000-000000000000", "tenant", "processing", "test", payload, 1, cancel};
  return fn(ctx);
}

// Runs a payload that must be schema-valid and must succeed; returns the result.
json::value ok(const std::string& type, const jobs::handler_fn& fn, std::string_view payload) {
  const json::value p = json::parse(payload);
  INFO("payload: " << payload);
  CHECK_MESSAGE(schema_errors(type, p).empty(), schema_errors(type, p));
  auto r = call(fn, p);
  if (auto* e = std::get_if<handler_error>(&r)) FAIL("unexpected error: " << e->message);
  return std::get<json::value>(r);
}

// Runs a payload that must fail permanently; returns the message.
std::string permanent(const jobs::handler_fn& fn, const json::value& payload) {
  auto r = call(fn, payload);
  INFO("payload: " << json::serialize(payload));
  REQUIRE(std::holds_alternative<handler_error>(r));
  const auto& e = std::get<handler_error>(r);
  CHECK(e.what == handler_error::kind::permanent);
  CHECK(!e.message.empty());
  return e.message;
}
std::string permanent(const jobs::handler_fn& fn, const char* payload) {
  return permanent(fn, json::parse(payload));
}

std::vector<std::vector<std::string>> read_all(std::string_view text, char delimiter = ',') {
  csv_reader reader(text, delimiter);
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> fields;
  for (;;) {
    const auto st = reader.next(fields);
    REQUIRE_MESSAGE(st != csv_reader::status::error, reader.error_message());
    if (st == csv_reader::status::end) break;
    records.push_back(fields);
  }
  return records;
}

using rows = std::vector<std::vector<std::string>>;

const jobs::handler_fn noop = jobs::processing::noop_handler;
const jobs::handler_fn hash = jobs::processing::hash_handler;
const jobs::handler_fn csv = jobs::processing::csv_aggregate_handler;

// The csv.aggregate payload {"csv": text, "aggregates": [...] , ...rest}.
json::value agg(std::string_view text, std::string_view rest_json) {
  json::value v = json::parse(rest_json);
  v.as_object()["csv"] = text;
  return v;
}

}  // namespace

TEST_SUITE("csv_reader") {
  TEST_CASE("plain records with LF, CRLF, with and without a final line end") {
    const rows want{{"a", "b"}, {"1", "2"}, {"3", "4"}};
    CHECK(read_all("a,b\n1,2\n3,4\n") == want);
    CHECK(read_all("a,b\n1,2\n3,4") == want);
    CHECK(read_all("a,b\r\n1,2\r\n3,4\r\n") == want);
    CHECK(read_all("a,b\r\n1,2\n3,4") == want);
  }

  TEST_CASE("quoted fields: delimiter, line breaks, escaped quotes") {
    CHECK(read_all("\"a,b\",c\n") == rows{{"a,b", "c"}});
    CHECK(read_all("\"line1\nline2\",x\n") == rows{{"line1\nline2", "x"}});
    CHECK(read_all("\"line1\r\nline2\",x\r\n") == rows{{"line1\r\nline2", "x"}});
    CHECK(read_all("\"say \"\"hi\"\"\",\"\"\"\"\n") == rows{{"say \"hi\"", "\""}});
    CHECK(read_all("\"a\"") == rows{{"a"}});
    CHECK(read_all("x,\"\"\n") == rows{{"x", ""}});
  }

  TEST_CASE("empty fields and empty lines") {
    CHECK(read_all(",,\n") == rows{{"", "", ""}});
    CHECK(read_all("a,\n,b") == rows{{"a", ""}, {"", "b"}});
    CHECK(read_all("a,b,") == rows{{"a", "b", ""}});
    CHECK(read_all("a\n\n\r\nb\n\n") == rows{{"a"}, {"b"}});
    CHECK(read_all("a\n\"\"\nb") == rows{{"a"}, {""}, {"b"}});
    CHECK(read_all("").empty());
    CHECK(read_all("\n\n").empty());
  }

  TEST_CASE("lenient cases: stray quote, lone CR, BOM, other delimiters") {
    CHECK(read_all("ab\"c,d\n") == rows{{"ab\"c", "d"}});
    CHECK(read_all("a\rb,c\n") == rows{{"a\rb", "c"}});
    CHECK(read_all("\xEF\xBB\xBFid,v\n1,2\n") == rows{{"id", "v"}, {"1", "2"}});
    CHECK(read_all("a;b,c\n", ';') == rows{{"a", "b,c"}});
    CHECK(read_all("a\tb\n\"x\ty\"\tz\n", '\t') == rows{{"a", "b"}, {"x\ty", "z"}});
  }

  TEST_CASE("line numbers count physical lines, including quoted breaks and empty lines") {
    csv_reader r("h\n\"a\nb\"\n\nc\n", ',');
    std::vector<std::string> f;
    REQUIRE(r.next(f) == csv_reader::status::record);
    CHECK(r.line() == 1);
    REQUIRE(r.next(f) == csv_reader::status::record);
    CHECK(r.line() == 2);
    REQUIRE(r.next(f) == csv_reader::status::record);
    CHECK(f == std::vector<std::string>{"c"});
    CHECK(r.line() == 5);
    CHECK(r.next(f) == csv_reader::status::end);
    CHECK(r.next(f) == csv_reader::status::end);
  }

  TEST_CASE("malformed quoting is an error with a line number, and stays one") {
    csv_reader unclosed("a\nb\n\"open,x\n", ',');
    std::vector<std::string> f;
    CHECK(unclosed.next(f) == csv_reader::status::record);
    CHECK(unclosed.next(f) == csv_reader::status::record);
    CHECK(unclosed.next(f) == csv_reader::status::error);
    CHECK(unclosed.error_message().find("line 3") != std::string::npos);
    CHECK(unclosed.error_message().find("not closed") != std::string::npos);
    CHECK(unclosed.next(f) == csv_reader::status::error);

    csv_reader after("a\n\"x\"y,z\n", ',');
    CHECK(after.next(f) == csv_reader::status::record);
    CHECK(after.next(f) == csv_reader::status::error);
    CHECK(after.error_message().find("line 2") != std::string::npos);
    CHECK(f.empty());
  }
}

TEST_CASE("csv_reader: more fields than max_fields is an error, exactly max is not") {
  std::vector<std::string> f;
  for (const char* text : {"a,b,c\n", "a,b,c", "a,b,\"c\"", "a,b,c,d,e,f\n"}) {
    csv_reader r(text, ',', 2);
    CHECK(r.next(f) == csv_reader::status::error);
    CHECK(r.error_message().find("more than 2 fields") != std::string::npos);
  }
  csv_reader r("a,b\n1,\n", ',', 2);
  CHECK(r.next(f) == csv_reader::status::record);
  CHECK(r.next(f) == csv_reader::status::record);
  CHECK(f.size() == 2);
}

TEST_SUITE("csv cells") {
  TEST_CASE("parse_number takes finite decimals with blanks and a plus sign") {
    using jobs::processing::detail::parse_number;
    CHECK(parse_number("1") == 1.0);
    CHECK(parse_number(" \t2 ") == 2.0);
    CHECK(parse_number("+3") == 3.0);
    CHECK(parse_number("-4.5") == -4.5);
    CHECK(parse_number("1e3") == 1000.0);
    CHECK(parse_number(".5") == 0.5);
    for (const char* bad : {"", " ", "abc", "1x", "inf", "-inf", "nan", "1e999", "0x10", "+-1",
                            "++1", "--1", "1 2", "1,5"}) {
      INFO(std::string(bad));
      CHECK_FALSE(parse_number(bad).has_value());
    }
  }

  TEST_CASE("is_blank") {
    using jobs::processing::detail::is_blank;
    CHECK(is_blank(""));
    CHECK(is_blank(" \t "));
    CHECK_FALSE(is_blank(" 0 "));
    CHECK_FALSE(is_blank("\"\""));
  }
}

TEST_SUITE("processing.noop") {
  TEST_CASE("returns ok, and echo when given") {
    CHECK(ok("noop", noop, "{}") == json::parse(R"({"ok":true})"));
    CHECK(ok("noop", noop, R"({"echo":{"run":42,"tags":["bench"]}})") ==
          json::parse(R"({"ok":true,"echo":{"run":42,"tags":["bench"]}})"));
    CHECK(ok("noop", noop, R"({"echo":null})") == json::parse(R"({"ok":true,"echo":null})"));
  }

  TEST_CASE("sleeps for sleep_ms") {
    const auto start = std::chrono::steady_clock::now();
    ok("noop", noop, R"({"sleep_ms":30})");
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(30));
    ok("noop", noop, R"({"sleep_ms":0})");
    CHECK(std::holds_alternative<json::value>(call(noop, json::parse(R"({"sleep_ms":1.0})"))));
  }

  TEST_CASE("burns cpu_ms of its thread's CPU time; pad is ignored") {
    timespec before{}, after{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &before);
    CHECK(ok("noop", noop, R"({"cpu_ms":20,"pad":"xxxxxxxx"})") == json::parse(R"({"ok":true})"));
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &after);
    auto burnt = (after.tv_sec - before.tv_sec) * 1000 + (after.tv_nsec - before.tv_nsec) / 1000000;
    CHECK(burnt >= 20);
  }

  TEST_CASE("a stop request cuts the CPU step short with a snooze") {
    std::atomic<bool> stop{true};
    auto r = call(noop, json::parse(R"({"cpu_ms":60000})"), &stop);
    REQUIRE(std::holds_alternative<handler_error>(r));
    CHECK(std::get<handler_error>(r).what == handler_error::kind::snooze);
  }

  TEST_CASE("a stop request cuts the sleep short with a snooze") {
    std::atomic<bool> stop{false};
    std::thread stopper([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      stop = true;
    });
    const auto start = std::chrono::steady_clock::now();
    auto r = call(noop, json::parse(R"({"sleep_ms":60000})"), &stop);
    const auto took = std::chrono::steady_clock::now() - start;
    stopper.join();
    REQUIRE(std::holds_alternative<handler_error>(r));
    CHECK(std::get<handler_error>(r).what == handler_error::kind::snooze);
    CHECK(took < std::chrono::seconds(5));
  }

  TEST_CASE("bad payloads are permanent errors") {
    permanent(noop, "[]");
    permanent(noop, "\"x\"");
    for (const char* p :
         {R"({"sleep_ms":-1})", R"({"sleep_ms":60001})", R"({"sleep_ms":"5"})",
          R"({"sleep_ms":1.5})", R"({"sleep_ms":1e300})", R"({"sleep_ms":18446744073709551615})"}) {
      CHECK(permanent(noop, p).find("sleep_ms") != std::string::npos);
      CHECK_FALSE(schema_errors("noop", json::parse(p)).empty());
    }
    for (const char* p : {R"({"cpu_ms":-1})", R"({"cpu_ms":60001})", R"({"cpu_ms":"5"})"}) {
      CHECK(permanent(noop, p).find("cpu_ms") != std::string::npos);
      CHECK_FALSE(schema_errors("noop", json::parse(p)).empty());
    }
    CHECK_FALSE(schema_errors("noop", json::parse(R"({"pad":5})")).empty());
  }
}

TEST_SUITE("processing.hash") {
  TEST_CASE("known digests in hex") {
    CHECK(ok("hash", hash, R"({"input":"hello"})") == json::parse(R"({"algorithm":"sha256","digest":
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            "encoding":"hex","bytes":5})"));
    CHECK(ok("hash", hash, R"({"input":""})").at("digest") ==
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(ok("hash", hash, R"({"input":""})").at("bytes") == 0);
    CHECK(ok("hash", hash, R"({"algorithm":"md5","input":"hello"})").at("digest") ==
          "5d41402abc4b2a76b9719d911017c592");
  }

  TEST_CASE("every algorithm of the schema, on \"abc\"") {
    const std::pair<const char*, const char*> vectors[] = {
        {"sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"sha256", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"sha384",
         "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca1"
         "34c825a7"},
        {"sha512",
         "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23"
         "a3feebbd454d4423643ce80e2a9ac94fa54ca49f"},
        {"md5", "900150983cd24fb0d6963f7d28e17f72"},
        {"sha3-256", "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"},
        {"blake2b512",
         "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de"
         "4533cc9518d38aa8dbf1925ab92386edd4009923"},
    };
    std::set<std::string> tested;
    for (const auto& [algo, digest] : vectors) {
      const auto r =
          ok("hash", hash, std::string(R"({"input":"abc","algorithm":")") + algo + "\"}");
      CHECK(r.at("algorithm") == algo);
      CHECK(r.at("digest") == digest);
      tested.insert(algo);
    }
    std::set<std::string> in_schema;
    const json::value schema = load_schema("hash");
    for (const auto& a : schema.at_pointer("/properties/algorithm/enum").as_array()) {
      in_schema.insert(std::string(a.as_string()));
    }
    CHECK(tested == in_schema);
  }

  TEST_CASE("base64 output") {
    auto r = ok("hash", hash, R"({"input":"hello","encoding":"base64"})");
    CHECK(r.at("digest") == "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=");
    CHECK(r.at("encoding") == "base64");
    CHECK(ok("hash", hash, R"({"algorithm":"md5","input":"hello","encoding":"base64"})")
              .at("digest") == "XUFAKrxLKna5cZ2REBfFkg==");
  }

  TEST_CASE("base64 input, padded or not, and binary bytes") {
    const char* hello_sha256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    auto r = ok("hash", hash, R"({"input_base64":"aGVsbG8="})");
    CHECK(r.at("digest") == hello_sha256);
    CHECK(r.at("bytes") == 5);
    CHECK(ok("hash", hash, R"({"input_base64":"aGVsbG8"})").at("digest") == hello_sha256);
    CHECK(ok("hash", hash, R"({"input_base64":""})").at("bytes") == 0);
    r = ok("hash", hash, R"({"input_base64":"AP8Q"})");  // bytes 00 ff 10
    CHECK(r.at("digest") == "2da45f2cd1f9c8e69a67abf7a6b26c282533d0a7686787a9533265418680d4d2");
    CHECK(r.at("bytes") == 3);
  }

  TEST_CASE("text input is hashed as UTF-8 and counted in bytes") {
    auto r = ok("hash", hash, R"({"input":"h\u00e9llo"})");
    CHECK(r.at("digest") == "3c48591d8d098a4538f5e013dfcf406e948eac4d3277b10bf614e295d6068179");
    CHECK(r.at("bytes") == 6);
  }

  TEST_CASE("invalid base64 is a permanent error that says so") {
    for (const char* b : {"aGVs*G8=", "aGVsb", "aG=sbG8=", "aGVsbG8=\n", "aGVsbG8===", "===="}) {
      json::value p{{"input_base64", b}};
      CHECK(permanent(hash, p).find("base64") != std::string::npos);
    }
  }

  TEST_CASE("the API's schema refuses base64 input exactly when the handler does") {
    const jobs::schema_registry reg(JOBS_SOURCE_DIR "/schemas/jobs");
    for (const char* b : {"", "aGk", "aGk=", "aA", "aA==", "aA=", "AP8Q", "a", "aGVsb", "aG=sbG8=",
                          "aGVsbG8=\n", "aGVsbG8===", "====", "a-b_", "aGVs*G8=", "aG k"}) {
      CAPTURE(b);
      const json::value p{{"input_base64", b}};
      const auto refused = reg.validate("processing", "hash", p);
      CHECK(refused.has_value() == std::holds_alternative<handler_error>(call(hash, p)));
      if (refused) CHECK(refused->pointer == "/payload/input_base64");
    }
  }

  TEST_CASE("input limit: exactly 1 MiB passes, one byte more does not") {
    const std::size_t max = jobs::processing::hash_limits::max_input_bytes;
    CHECK(max == 1 << 20);
    auto r = call(hash, json::value{{"input", std::string(max, 'a')}});
    REQUIRE(std::holds_alternative<json::value>(r));
    CHECK(std::get<json::value>(r).at("digest") ==
          "9bc1b2a288b26af7257a36277ae3816a7d4f16e89c1e7e77d0a5c48bad62b360");
    CHECK(permanent(hash, json::value{{"input", std::string(max + 1, 'a')}}).find("larger") !=
          std::string::npos);
    // 1 MiB + 3 bytes of zeros, in base64: too big after decoding.
    CHECK(permanent(hash, json::value{{"input_base64", std::string((max + 3) / 3 * 4, 'A')}})
              .find("larger") != std::string::npos);
  }

  TEST_CASE("other bad payloads are permanent errors") {
    permanent(hash, "42");
    CHECK(permanent(hash, "{}").find("exactly one") != std::string::npos);
    CHECK(permanent(hash, R"({"input":"a","input_base64":"YQ=="})").find("exactly one") !=
          std::string::npos);
    CHECK(permanent(hash, R"({"input":"a","algorithm":"sha257"})").find("sha257") !=
          std::string::npos);
    CHECK(permanent(hash, R"({"input":"a","algorithm":"SHA256"})").find("SHA256") !=
          std::string::npos);
    CHECK(permanent(hash, R"({"input":"a","encoding":"base32"})").find("encoding") !=
          std::string::npos);
    permanent(hash, R"({"input":5})");
    permanent(hash, R"({"input":"a","algorithm":null})");
  }
}

TEST_SUITE("processing.csv.aggregate") {
  TEST_CASE("group by one column: first-appearance order, count and sum") {
    auto r = ok("csv.aggregate", csv, R"({"csv":"region,amount\neu,1\nus,2\neu,3\nap,4\n",
      "group_by":["region"],"aggregates":[{"op":"count"},{"op":"sum","column":"amount"}]})");
    CHECK(r == json::parse(R"({"rows":[
      {"region":"eu","count":2,"sum_amount":4},
      {"region":"us","count":1,"sum_amount":2},
      {"region":"ap","count":1,"sum_amount":4}],"row_count":4,"group_count":3})"));
    // Key order within a row: group columns, then aggregates in request order.
    const auto& first = r.at("rows").at(0).as_object();
    CHECK(first.begin()->key() == "region");
    CHECK((first.begin() + 2)->key() == "sum_amount");
  }

  TEST_CASE("group by two columns") {
    auto r = ok("csv.aggregate", csv, R"({"csv":"y,m,v\n2024,1,10\n2024,2,5\n2024,1,1\n2023,1,7\n",
      "group_by":["m","y"],"aggregates":[{"op":"sum","column":"v","as":"total"}]})");
    CHECK(r.at("rows") == json::parse(R"([
      {"m":"1","y":"2024","total":11},{"m":"2","y":"2024","total":5},
      {"m":"1","y":"2023","total":7}])"));
    CHECK(r.at("group_count") == 3);
    // Keys "a|b"+"c" and "a"+"b|c" must stay apart whatever the key encoding.
    r = ok("csv.aggregate", csv, R"({"csv":"p,q\nab,c\na,bc\n","group_by":["p","q"],
      "aggregates":[{"op":"count"}]})");
    CHECK(r.at("group_count") == 2);
  }

  TEST_CASE("all ops; integral results are integers, others doubles") {
    auto r = ok("csv.aggregate", csv, R"({"csv":"x\n1\n2\n-3.5\n4\n","aggregates":[
      {"op":"count"},{"op":"sum","column":"x"},{"op":"min","column":"x"},
      {"op":"max","column":"x"},{"op":"avg","column":"x"}]})");
    const auto& row = r.at("rows").at(0).as_object();
    CHECK(row.at("count").is_int64());
    CHECK(row.at("count") == 4);
    CHECK(row.at("sum_x").is_double());
    CHECK(row.at("sum_x").as_double() == doctest::Approx(3.5));
    CHECK(row.at("min_x").as_double() == -3.5);
    CHECK(row.at("max_x").is_int64());
    CHECK(row.at("max_x") == 4);
    CHECK(row.at("avg_x").as_double() == doctest::Approx(0.875));
    CHECK(r.at("row_count") == 4);

    r = ok("csv.aggregate", csv, R"({"csv":"x\n1\n2\n","aggregates":[
      {"op":"sum","column":"x"},{"op":"avg","column":"x"}]})");
    CHECK(r.at("rows").at(0).at("sum_x").is_int64());
    CHECK(r.at("rows").at(0).at("sum_x") == 3);
    CHECK(r.at("rows").at(0).at("avg_x").as_double() == 1.5);

    r = ok("csv.aggregate", csv, R"({"csv":"x\n1.5\n1.5\n0.2e1\n-0\n","aggregates":[
      {"op":"sum","column":"x"},{"op":"min","column":"x"}]})");
    CHECK(r.at("rows").at(0).at("sum_x").is_int64());
    CHECK(r.at("rows").at(0).at("sum_x") == 5);  // 1.5 + 1.5 + 2 + 0
    CHECK(r.at("rows").at(0).at("min_x") == 0);
  }

  TEST_CASE("integers only up to 2^53") {
    auto r = ok("csv.aggregate", csv, R"({"csv":"x\n9007199254740992\n","aggregates":[
      {"op":"sum","column":"x","as":"a"},{"op":"avg","column":"x","as":"b"}]})");
    CHECK(r.at("rows").at(0).at("a").is_int64());
    CHECK(r.at("rows").at(0).at("a") == 9007199254740992);
    r = ok("csv.aggregate", csv, R"({"csv":"x\n9007199254740992\n9007199254740992\n",
      "aggregates":[{"op":"sum","column":"x"}]})");
    CHECK(r.at("rows").at(0).at("sum_x").is_double());
    CHECK(r.at("rows").at(0).at("sum_x").as_double() == 18014398509481984.0);
  }

  TEST_CASE("empty cells are skipped; no values gives null, sum 0") {
    auto r = ok("csv.aggregate", csv, R"({"csv":"g,x\na,\na,  \nb,2\na,\"\"\n",
      "group_by":["g"],"aggregates":[{"op":"count"},{"op":"count","column":"x"},
      {"op":"sum","column":"x"},{"op":"min","column":"x"},{"op":"max","column":"x"},
      {"op":"avg","column":"x"}]})");
    CHECK(r.at("rows") == json::parse(R"([
      {"g":"a","count":3,"count_x":0,"sum_x":0,"min_x":null,"max_x":null,"avg_x":null},
      {"g":"b","count":1,"count_x":1,"sum_x":2,"min_x":2,"max_x":2,"avg_x":2}])"));
  }

  TEST_CASE("no group_by is one group, even with no data rows; with group_by, none") {
    auto r = ok("csv.aggregate", csv, R"({"csv":"x\n","aggregates":[{"op":"count"},
      {"op":"sum","column":"x"},{"op":"avg","column":"x"}]})");
    CHECK(r == json::parse(R"({"rows":[{"count":0,"sum_x":0,"avg_x":null}],
      "row_count":0,"group_count":1})"));
    r = ok("csv.aggregate", csv, R"({"csv":"x","group_by":["x"],"aggregates":[{"op":"count"}]})");
    CHECK(r == json::parse(R"({"rows":[],"row_count":0,"group_count":0})"));
  }

  TEST_CASE("quoting, CRLF, other delimiters and lenient numbers through the handler") {
    auto r = ok(
        "csv.aggregate", csv,
        R"({"csv":"\"name, full\",n\r\n\"Doe, J\",\" 1 \"\r\n\"Doe, J\",+2\r\n\"say \"\"x\"\"\n!\",3",
      "group_by":["name, full"],"aggregates":[{"op":"sum","column":"n"}]})");
    CHECK(r.at("rows") == json::parse(R"([{"name, full":"Doe, J","sum_n":3},
      {"name, full":"say \"x\"\n!","sum_n":3}])"));
    CHECK(r.at("row_count") == 3);
    r = ok("csv.aggregate", csv, R"({"csv":"a;b\n1;2,5\n","delimiter":";",
      "group_by":["b"],"aggregates":[{"op":"max","column":"a"}]})");
    CHECK(r.at("rows") == json::parse(R"([{"b":"2,5","max_a":1}])"));
    r = ok("csv.aggregate", csv, R"({"csv":"a\tb\n1\t2\n","delimiter":"\t",
      "aggregates":[{"op":"sum","column":"b"}]})");
    CHECK(r.at("rows").at(0).at("sum_b") == 2);
  }

  TEST_CASE("a non-numeric cell names the data row, line and column") {
    for (const char* bad : {"abc", "12abc", "inf", "nan", "1e999", "0x10", "+-1", "1,5"}) {
      std::string text = "id,amount\n1,5\n\"2\nx\",\"";
      for (const char* c = bad; *c; ++c)
        text += *c == '"' ? std::string("\"\"") : std::string(1, *c);
      text += "\"\n";
      const auto m =
          permanent(csv, agg(text, R"({"aggregates":[{"op":"sum","column":"amount"}]})"));
      INFO(m);
      CHECK(m.find("row 2 (line 3)") != std::string::npos);
      CHECK(m.find("\"amount\"") != std::string::npos);
      CHECK(m.find("not a number") != std::string::npos);
    }
    // count with a column only checks emptiness, never numbers.
    auto r = call(
        csv, agg("id,amount\n1,abc\n", R"({"aggregates":[{"op":"count","column":"amount"}]})"));
    CHECK(std::holds_alternative<json::value>(r));
  }

  TEST_CASE("a row with the wrong number of fields names the row") {
    auto m = permanent(csv, agg("a,b\n1,2\n3\n", R"({"aggregates":[{"op":"count"}]})"));
    CHECK(m.find("row 2") != std::string::npos);
    CHECK(m.find("1 fields") != std::string::npos);
    m = permanent(csv, agg("a,b\n1,2,3\n", R"({"aggregates":[{"op":"count"}]})"));
    CHECK(m.find("row 1") != std::string::npos);
  }

  TEST_CASE("unknown, ambiguous and clashing names") {
    CHECK(permanent(csv, agg("a,b\n", R"({"aggregates":[{"op":"sum","column":"c"}]})"))
              .find("unknown column \"c\"") != std::string::npos);
    CHECK(permanent(csv, agg("a,b\n", R"({"group_by":["z"],"aggregates":[{"op":"count"}]})"))
              .find("unknown column \"z\"") != std::string::npos);
    CHECK(permanent(csv, agg("a,a\n1,2\n", R"({"aggregates":[{"op":"sum","column":"a"}]})"))
              .find("twice") != std::string::npos);
    // A duplicate header column nobody asks for is harmless.
    CHECK(std::holds_alternative<json::value>(
        call(csv, agg("a,a,b\n1,2,3\n", R"({"aggregates":[{"op":"sum","column":"b"}]})"))));
    CHECK(permanent(csv, agg("a\n", R"({"aggregates":[{"op":"count"},{"op":"count"}]})"))
              .find("\"count\"") != std::string::npos);
    CHECK(permanent(csv, agg("count\n", R"({"group_by":["count"],"aggregates":[{"op":"count"}]})"))
              .find("\"count\"") != std::string::npos);
    permanent(csv, agg("a\n", R"({"group_by":["a","a"],"aggregates":[{"op":"count"}]})"));
    auto r = ok("csv.aggregate", csv, R"({"csv":"a\n1\n","aggregates":[{"op":"count"},
      {"op":"count","as":"n"},{"op":"sum","column":"a","as":"count_a"}]})");
    CHECK(r.at("rows").at(0) == json::parse(R"({"count":1,"n":1,"count_a":1})"));
  }

  TEST_CASE("malformed CSV and bad payloads are permanent errors") {
    const char* count = R"({"aggregates":[{"op":"count"}]})";
    CHECK(permanent(csv, agg("", count)).find("header") != std::string::npos);
    CHECK(permanent(csv, agg("\n\n", count)).find("header") != std::string::npos);
    CHECK(permanent(csv, agg("a\n\"1\n", count)).find("not closed") != std::string::npos);
    CHECK(permanent(csv, agg("\"a\n", count)).find("not closed") != std::string::npos);
    CHECK(permanent(csv, agg("a\n\"1\"x\n", count)).find("closing quote") != std::string::npos);
    permanent(csv, "[]");
    permanent(csv, R"({"aggregates":[{"op":"count"}]})");
    permanent(csv, R"({"csv":1,"aggregates":[{"op":"count"}]})");
    permanent(csv, agg("a\n", "{}"));
    permanent(csv, agg("a\n", R"({"aggregates":[]})"));
    permanent(csv, agg("a\n", R"({"aggregates":[{"op":"median","column":"a"}]})"));
    permanent(csv, agg("a\n", R"({"aggregates":[{"column":"a"}]})"));
    permanent(csv, agg("a\n", R"({"aggregates":[1]})"));
    permanent(csv, agg("a\n", R"({"aggregates":[{"op":"count","as":""}]})"));
    permanent(csv, agg("a\n", R"({"aggregates":[{"op":"sum","column":7}]})"));
    CHECK(permanent(csv, agg("a\n", R"({"aggregates":[{"op":"avg"}]})")).find("needs a column") !=
          std::string::npos);
    permanent(csv, agg("a\n", R"({"group_by":"a","aggregates":[{"op":"count"}]})"));
    permanent(csv, agg("a\n", R"({"group_by":[1],"aggregates":[{"op":"count"}]})"));
    for (const char* d : {R"("")", R"(";;")", R"("\"")", R"("\n")", R"("\u00e9")", "44"}) {
      auto p = agg("a\n", std::string(R"({"aggregates":[{"op":"count"}],"delimiter":)") + d + "}");
      CHECK(permanent(csv, p).find("delimiter") != std::string::npos);
      CHECK_FALSE(schema_errors("csv.aggregate", p).empty());
    }
  }

  TEST_CASE("limits: csv size, group_by and aggregate counts, groups") {
    using lim = jobs::processing::csv_limits;
    const char* count = R"({"aggregates":[{"op":"count"}]})";
    std::string big = "a\n";
    big.resize(lim::max_csv_bytes, '1');
    CHECK(std::holds_alternative<json::value>(call(csv, agg(big, count))));
    big += '1';
    CHECK(permanent(csv, agg(big, count)).find("larger") != std::string::npos);

    json::array nine(lim::max_group_by + 1, "a");
    json::value p = agg("a\n", count);
    p.as_object()["group_by"] = nine;
    permanent(csv, p);
    json::array many(lim::max_aggregates + 1, json::object{{"op", "count"}});
    p = agg("a\n", "{}");
    p.as_object()["aggregates"] = many;
    permanent(csv, p);

    std::string wide(lim::max_columns - 1, ',');
    CHECK(std::holds_alternative<json::value>(call(csv, agg(wide, count))));
    CHECK(permanent(csv, agg(wide + ",", count)).find("fields") != std::string::npos);

    std::string keys = "k\n";
    for (std::size_t i = 0; i < lim::max_groups; ++i) keys += std::to_string(i) + "\n";
    const char* by_k = R"({"group_by":["k"],"aggregates":[{"op":"count"}]})";
    auto r = call(csv, agg(keys, by_k));
    REQUIRE(std::holds_alternative<json::value>(r));
    CHECK(std::get<json::value>(r).at("group_count") == lim::max_groups);
    keys += "one-more\n";
    CHECK(permanent(csv, agg(keys, by_k)).find("groups") != std::string::npos);
  }
}

TEST_SUITE("processing registration and schemas") {
  TEST_CASE("register_processing_handlers adds the three types to queue processing") {
    jobs::handler_registry reg;
    jobs::register_processing_handlers(reg);
    const auto* fn = reg.find("processing", "noop");
    REQUIRE(fn);
    CHECK(std::holds_alternative<json::value>(call(*fn, json::object{})));
    REQUIRE(reg.find("processing", "hash"));
    CHECK(std::get<json::value>(call(*reg.find("processing", "hash"),
                                     json::parse(R"({"input":"hello","algorithm":"md5"})")))
              .at("digest") == "5d41402abc4b2a76b9719d911017c592");
    REQUIRE(reg.find("processing", "csv.aggregate"));
    CHECK(reg.find("processing", "csv") == nullptr);
    CHECK(reg.find("email", "noop") == nullptr);
  }

  // Every free string has maxLength, every array maxItems, every object is closed.
  void check_limits(const json::value& s, const std::string& where) {
    INFO("at " << where);
    const auto& o = s.as_object();
    if (const auto* t = o.if_contains("type")) {
      if (*t == "string") CHECK((o.contains("maxLength") || o.contains("enum")));
      if (*t == "array") CHECK(o.contains("maxItems"));
      if (*t == "object") {
        REQUIRE(o.contains("additionalProperties"));
        CHECK(o.at("additionalProperties") == false);
      }
    }
    if (const auto* props = o.if_contains("properties")) {
      for (const auto& [k, v] : props->as_object()) check_limits(v, where + "/" + std::string(k));
    }
    if (const auto* items = o.if_contains("items")) check_limits(*items, where + "[]");
  }

  TEST_CASE("schemas are draft-07 JSON with limits on every string and array") {
    for (std::string type : {"noop", "hash", "csv.aggregate"}) {
      INFO(type);
      const json::value s = load_schema(type);
      CHECK(s.at("$schema") == "http://json-schema.org/draft-07/schema#");
      CHECK(s.at("type") == "object");
      check_limits(s, type);
    }
  }

  TEST_CASE("schema limits agree with the handlers' constants") {
    using namespace jobs::processing;
    const json::value noop_s = load_schema("noop");
    CHECK(noop_s.at_pointer("/properties/sleep_ms/maximum") == noop_limits::max_sleep_ms);
    const json::value hash_s = load_schema("hash");
    CHECK(hash_s.at_pointer("/properties/input/maxLength") == hash_limits::max_input_bytes);
    CHECK(hash_s.at_pointer("/properties/input_base64/maxLength") ==
          (hash_limits::max_input_bytes + 2) / 3 * 4);
    const json::value csv_s = load_schema("csv.aggregate");
    CHECK(csv_s.at_pointer("/properties/csv/maxLength") == csv_limits::max_csv_bytes);
    CHECK(csv_s.at_pointer("/properties/group_by/maxItems") == csv_limits::max_group_by);
    CHECK(csv_s.at_pointer("/properties/group_by/items/maxLength") == csv_limits::max_name_length);
    CHECK(csv_s.at_pointer("/properties/aggregates/maxItems") == csv_limits::max_aggregates);
    CHECK(csv_s.at_pointer("/properties/aggregates/items/properties/column/maxLength") ==
          csv_limits::max_name_length);
  }

  TEST_CASE("the schemas' examples are valid and the handlers run them") {
    const std::pair<const char*, const jobs::handler_fn*> types[] = {
        {"noop", &noop}, {"hash", &hash}, {"csv.aggregate", &csv}};
    for (const auto& [type, fn] : types) {
      const json::value schema = load_schema(type);
      const auto& examples = schema.at("examples").as_array();
      CHECK(!examples.empty());
      for (const auto& e : examples) ok(type, *fn, json::serialize(e));
    }
  }

  TEST_CASE("the schemas turn away what the handlers would") {
    const std::pair<const char*, const char*> rejected[] = {
        {"noop", R"({"sleep":5})"},
        {"noop", "[]"},
        {"hash", "{}"},
        {"hash", R"({"input":"a","input_base64":"YQ=="})"},
        {"hash", R"({"input":"a","algorithm":"sha257"})"},
        {"hash", R"({"input":"a","encoding":"base32"})"},
        {"hash", R"({"input":"a","extra":1})"},
        {"csv.aggregate", R"({"csv":"a"})"},
        {"csv.aggregate", R"({"csv":"a","aggregates":[]})"},
        {"csv.aggregate", R"({"csv":"a","aggregates":[{"op":"sum"}]})"},
        {"csv.aggregate", R"({"csv":"a","aggregates":[{"op":"median","column":"a"}]})"},
        {"csv.aggregate", R"({"csv":"a","aggregates":[{"op":"count","as":""}]})"},
        {"csv.aggregate", R"({"csv":"a","aggregates":[{"op":"count","x":1}]})"},
        {"csv.aggregate", R"({"csv":"a","group_by":["a","a"],"aggregates":[{"op":"count"}]})"},
    };
    for (const auto& [type, payload] : rejected) {
      INFO(std::string(type) << " " << payload);
      CHECK_FALSE(schema_errors(type, json::parse(payload)).empty());
    }
    CHECK(schema_errors("csv.aggregate",
                        json::parse(R"({"csv":"a","aggregates":[{"op":"count","column":"a"}]})"))
              .empty());
  }
}
