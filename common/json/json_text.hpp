#pragma once
// Compact JSON text of a boost::json value, with each number written the
// way a person or another JSON library would write it.
//
// boost::json::serialize (Boost 1.74, Debian 12's) writes every double in
// scientific form with a capital E: 1.5 becomes "1.5E0" and 0.1 "1E-1".
// That is valid JSON, but it is what a webhook's receiver would get (and
// what the signature covers) for a body submitted as {"a":1.5}, and what
// `jobsctl` would print. Here a double is the shortest text that reads back
// as the same double (std::to_chars): 1.5, 0.1, 1000, 1e+21. Integers and
// strings (escaped as boost::json does) are unchanged; a double that is not
// finite, which no parsed document holds, is written null.
//
// Thread-safety: pure functions.

#include <boost/json/value.hpp>

#include <string>

namespace jobs {

std::string json_text(const boost::json::value& v);

/// Appends json_text(v) to `out`.
void append_json_text(std::string& out, const boost::json::value& v);

}  // namespace jobs
