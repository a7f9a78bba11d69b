// Unit tests of common/json/json_text.hpp: numbers as people write them, the rest
// as boost::json writes it.
#include "common/json/json_text.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <limits>

namespace json = boost::json;

TEST_CASE("a double is the shortest text that reads back as it") {
  CHECK(jobs::json_text(json::parse(R"({"a":1.5,"b":2.25,"c":3,"d":0.1,"e":1e3,"f":-7})")) ==
        R"({"a":1.5,"b":2.25,"c":3,"d":0.1,"e":1000,"f":-7})");
  CHECK(jobs::json_text(json::value(1e21)) == "1e+21");
  CHECK(jobs::json_text(json::value(-0.000001)) == "-1e-06");
  CHECK(jobs::json_text(json::value(0.30000000000000004)) == "0.30000000000000004");
  CHECK(jobs::json_text(json::value(18446744073709551615ull)) == "18446744073709551615");
  CHECK(jobs::json_text(json::value(std::numeric_limits<double>::infinity())) == "null");
  // Every double written reads back as the same value.
  for (double d : {1.5, 0.1, 1e300, 5e-324, 123456.789, -2.5e-8}) {
    auto back = json::parse(jobs::json_text(json::value(d)));
    CHECK(back.to_number<double>() == d);
  }
}

TEST_CASE("strings, members, nesting and literals as boost::json writes them") {
  const char* doc =
      R"({"s":"quote \" backslash \\ line\n tab\t \u0001 é","n":null,"t":true,"f":false,)"
      R"("a":[1,[2,{}],[]],"o":{"k\"ey":{"x":[]}}})";
  auto v = json::parse(doc);
  CHECK(jobs::json_text(v) == json::serialize(v));
  std::string out = "x=";
  jobs::append_json_text(out, json::parse("[1.25]"));
  CHECK(out == "x=[1.25]");
}
