#pragma once
// Plain-text output for people: aligned tables, key/value listings, short
// times and durations. Pure functions (unit-tested).
//
// Widths count UTF-8 code points, so "…" is one column. Cells never hold a
// line break (it is shown as a space).

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace jobs::cli {

using row = std::vector<std::string>;

/// Columns separated by two spaces, each as wide as its widest cell, the
/// header first; no trailing spaces; each line ends in '\n'.
std::string format_table(const row& header, const std::vector<row>& rows);

/// "name:  value" lines, the values aligned; pairs with an empty value are
/// left out.
std::string format_fields(const std::vector<std::pair<std::string, std::string>>& fields);

/// `text` safe to print on a terminal: control characters other than tab
/// and line feed (ESC, CR, BEL, DEL, the C1 controls U+0080..U+009F) are
/// shown as escapes (\x1b, \u009b), so that text a submitter wrote
/// (an error, a key's name) cannot drive the operator's terminal.
std::string printable(std::string_view text);

/// At most `max` code points: longer text is cut and ends in "…".
std::string clip(std::string_view text, std::size_t max);

/// Display width (UTF-8 code points).
std::size_t display_width(std::string_view text);

/// An RFC 3339 time as the API writes it, shortened for a table:
/// "2026-11-29T09:19:11.123456Z" -> "2026-11-29 09:19:11"; "" for "".
std::string short_time(std::string_view rfc3339);

/// 42 -> "42s", 185 -> "3m05s", 7300 -> "2h01m", 200000 -> "2d07h"; under
/// 10 s with one decimal: 1.25 -> "1.2s".
std::string short_duration(double seconds);

}  // namespace jobs::cli
