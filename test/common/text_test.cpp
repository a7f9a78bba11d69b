// common/text.hpp: text as PostgreSQL stores it.
#include "common/text.hpp"

#include <doctest/doctest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <limits>

using namespace jobs;

TEST_CASE("stored text is UTF-8 PostgreSQL accepts, cut at a character boundary") {
  CHECK(utf8_text("", 10) == "");
  CHECK(utf8_text("{\"ok\":true}\r\n", 100) == "{\"ok\":true}\r\n");  // kept as sent
  CHECK(utf8_text(std::string("a\0b", 3), 100) == "a\uFFFDb");
  CHECK(utf8_text("a\xFF\xC0\xAF", 100) == "a\uFFFD\uFFFD\uFFFD");
  CHECK(utf8_text("caf\xC3\xA9", 4) == "caf");
  CHECK(utf8_text("\u20AC\u20AC\u20AC", 8) == "\u20AC\u20AC");
  // A malformed byte or a NUL inside the limit costs nothing after it.
  CHECK(utf8_text(std::string("ok\r\n\0line2", 10), 4096) == "ok\r\n\uFFFDline2");
  CHECK(utf8_text("abc\xFF\xFE"
                  "def",
                  4096) == "abc\uFFFD\uFFFDdef");
}

TEST_CASE("text cut at a byte count ends at a character boundary") {
  CHECK(utf8_whole_prefix("") == 0);
  CHECK(utf8_whole_prefix("abc") == 3);
  CHECK(utf8_whole_prefix("caf\xC3\xA9") == 5);    // whole
  CHECK(utf8_whole_prefix("caf\xC3") == 3);        // 2-byte sequence cut after 1
  CHECK(utf8_whole_prefix("a\xE2\x82") == 1);      // 3-byte cut after 2
  CHECK(utf8_whole_prefix("a\xF0\x9F\x98") == 1);  // 4-byte cut after 3
  CHECK(utf8_whole_prefix("a\xF0\x9F\x98\x80") == 5);
  // Not a cut character: left for utf8_text to replace.
  CHECK(utf8_whole_prefix("a\xFF") == 2);
  CHECK(utf8_whole_prefix("a\x80\x80\x80") == 4);
  // The 4 KiB kept of a longer answer may end inside a character: dropped.
  std::string kept;
  for (int i = 0; i < 1366; ++i) kept += "\u20AC";
  kept.resize(4096);
  kept.resize(utf8_whole_prefix(kept));
  CHECK(kept.size() == 4095);
  CHECK(utf8_text(kept, 4096) == kept);
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
  boost::json::value numbers = boost::json::array{1.5, std::numeric_limits<double>::infinity()};
  CHECK_FALSE(is_storable(numbers));
  make_storable(numbers);
  CHECK(boost::json::serialize(numbers) == "[1.5E0,null]");
  CHECK(is_storable_text("plain \u20AC"));
  CHECK_FALSE(is_storable_text(std::string("\0", 1)));
  CHECK_FALSE(is_storable_text("\xED\xA0\x80"));  // a surrogate
}
