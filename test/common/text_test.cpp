// common/text.hpp: text as PostgreSQL stores it.
#include "common/text.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

using namespace jobs;

TEST_CASE("stored text is UTF-8 PostgreSQL accepts, cut at a character boundary") {
  CHECK(utf8_text("", 10) == "");
  CHECK(utf8_text("{\"ok\":true}\r\n", 100) == "{\"ok\":true}\r\n");  // kept as sent
  CHECK(utf8_text(std::string("a\0b", 3), 100) == "a\uFFFDb");
  CHECK(utf8_text("a\xFF\xC0\xAF", 100) == "a\uFFFD\uFFFD\uFFFD");
  CHECK(utf8_text("caf\xC3\xA9", 4) == "caf");
  CHECK(utf8_text("\u20AC\u20AC\u20AC", 8) == "\u20AC\u20AC");
  // The 4 KiB kept of a longer answer may end inside a character: dropped.
  std::string kept;
  for (int i = 0; i < 1366; ++i) kept += "\u20AC";
  kept.resize(4096);
  auto t = utf8_text(kept, kept.size());
  CHECK(t.size() == 4095);
  CHECK(t.ends_with("\u20AC"));
}

TEST_CASE("a JSON value's strings and keys become storable; clean values are left alone") {
  boost::json::value clean = boost::json::parse(R"({"a":["caf\u00e9",1,{"b":null}]})");
  CHECK(is_storable(clean));
  boost::json::object o;
  o[std::string("k\0", 2)] = boost::json::array{"x\xFF", "ok"};
  boost::json::value v = o;
  CHECK_FALSE(is_storable(v));
  make_storable(v);
  CHECK(is_storable(v));
  CHECK(boost::json::serialize(v) == "{\"k\uFFFD\":[\"x\uFFFD\",\"ok\"]}");
  CHECK(is_storable_text("plain \u20AC"));
  CHECK_FALSE(is_storable_text(std::string("\0", 1)));
  CHECK_FALSE(is_storable_text("\xED\xA0\x80"));  // a surrogate
}
