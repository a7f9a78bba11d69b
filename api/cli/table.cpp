#include "api/cli/table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace jobs::cli {

namespace {

std::string one_line(std::string_view text) {
  auto out = printable(text);
  std::replace_if(
      out.begin(), out.end(), [](char c) { return c == '\n' || c == '\t'; }, ' ');
  return out;
}

void append_padded(std::string& out, const std::string& cell, std::size_t width) {
  out += cell;
  out.append(width - std::min(width, display_width(cell)), ' ');
}

void trim_right(std::string& line) {
  while (!line.empty() && line.back() == ' ') line.pop_back();
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto b = static_cast<unsigned char>(text[i]);
    if ((b < 0x20 && b != '\t' && b != '\n') || b == 0x7F) {
      out += fmt::format("\\x{:02x}", b);
    } else if (b == 0xC2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9F) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned char>(text[++i]));
    } else {
      out += text[i];
    }
  }
  return out;
}

std::size_t display_width(std::string_view text) {
  // Continuation bytes (10xxxxxx) do not start a code point.
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string clip(std::string_view text, std::size_t max) {
  if (display_width(text) <= max) return std::string(text);
  if (max == 0) return {};
  std::string out;
  std::size_t points = 0;
  for (char c : text) {
    bool starts = (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    if (starts && ++points == max) break;
    out += c;
  }
  return out + "…";
}

std::string format_table(const row& header, const std::vector<row>& rows) {
  std::vector<std::size_t> widths(header.size(), 0);
  auto measure = [&](const row& r) {
    for (std::size_t i = 0; i < r.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], display_width(one_line(r[i])));
  };
  measure(header);
  for (const auto& r : rows) measure(r);
  std::string out;
  auto print = [&](const row& r) {
    std::string line;
    for (std::size_t i = 0; i < widths.size(); ++i) {
      append_padded(line, i < r.size() ? one_line(r[i]) : std::string(), widths[i]);
      if (i + 1 < widths.size()) line += "  ";
    }
    trim_right(line);
    out += line + "\n";
  };
  print(header);
  for (const auto& r : rows) print(r);
  return out;
}

std::string format_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t width = 0;
  for (const auto& [k, v] : fields)
    if (!v.empty()) width = std::max(width, display_width(k) + 1);
  std::string out;
  for (const auto& [k, v] : fields) {
    if (v.empty()) continue;
    std::string line;
    append_padded(line, k + ":", width);
    line += "  " + one_line(v);
    trim_right(line);
    out += line + "\n";
  }
  return out;
}

std::string short_time(std::string_view t) {
  if (t.size() < 19 || t[10] != 'T') return std::string(t);
  std::string out(t.substr(0, 19));
  out[10] = ' ';
  return out;
}

std::string short_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  if (seconds < 10) return fmt::format("{:.1f}s", std::floor(seconds * 10) / 10);
  auto s = static_cast<long long>(seconds);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

}  // namespace jobs::cli
