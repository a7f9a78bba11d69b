#include "workers/processing/detail/csv.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace jobs::processing::detail {

csv_reader::csv_reader(std::string_view text, char delimiter, std::size_t max_fields) noexcept
    : text_(text), delimiter_(delimiter), max_fields_(max_fields) {
  if (text_.starts_with("\xEF\xBB\xBF")) pos_ = 3;
}

csv_reader::status csv_reader::next(std::vector<std::string>& fields) {
  fields.clear();
  if (!error_.empty()) return status::error;

  enum class state { field_start, unquoted, quoted, after_quote };
  state st = state::field_start;
  std::string field;
  std::size_t quote_line = 0;
  auto end_field = [&] {
    fields.push_back(std::move(field));
    field.clear();
  };
  auto too_many = [&] {
    error_ = "line " + std::to_string(record_line_) + ": more than " + std::to_string(max_fields_) +
             " fields";
    fields.clear();
    return status::error;
  };
  auto end_record = [&] {
    end_field();
    return fields.size() > max_fields_ ? too_many() : status::record;
  };
  // Returns the length of the line end at `i` (1 for LF, 2 for CRLF), else 0.
  auto line_end_at = [&](std::size_t i) -> std::size_t {
    if (text_[i] == '\n') return 1;
    if (text_[i] == '\r' && i + 1 < text_.size() && text_[i + 1] == '\n') return 2;
    return 0;
  };

  record_line_ = current_line_;
  while (pos_ < text_.size()) {
    if (fields.size() > max_fields_) return too_many();
    const char c = text_[pos_];
    switch (st) {
      case state::field_start:
        if (std::size_t n = line_end_at(pos_)) {
          pos_ += n;
          ++current_line_;
          if (fields.empty()) {  // an empty line
            record_line_ = current_line_;
            continue;
          }
          return end_record();
        }
        ++pos_;
        if (c == '"') {
          st = state::quoted;
          quote_line = current_line_;
        } else if (c == delimiter_) {
          end_field();
        } else {
          field += c;
          st = state::unquoted;
        }
        break;

      case state::unquoted:
        if (std::size_t n = line_end_at(pos_)) {
          pos_ += n;
          ++current_line_;
          return end_record();
        }
        ++pos_;
        if (c == delimiter_) {
          end_field();
          st = state::field_start;
        } else {
          field += c;
        }
        break;

      case state::quoted:
        ++pos_;
        if (c == '"') {
          st = state::after_quote;
        } else {
          if (c == '\n') ++current_line_;
          field += c;
        }
        break;

      case state::after_quote:
        if (std::size_t n = line_end_at(pos_)) {
          pos_ += n;
          ++current_line_;
          return end_record();
        }
        ++pos_;
        if (c == '"') {
          field += '"';
          st = state::quoted;
        } else if (c == delimiter_) {
          end_field();
          st = state::field_start;
        } else {
          error_ = "line " + std::to_string(current_line_) +
                   ": unexpected character after the closing quote of a field";
          fields.clear();
          return status::error;
        }
        break;
    }
  }

  if (st == state::quoted) {
    error_ = "line " + std::to_string(quote_line) + ": quoted field is not closed";
    fields.clear();
    return status::error;
  }
  if (st == state::field_start && fields.empty()) return status::end;
  return end_record();
}

bool is_blank(std::string_view cell) noexcept {
  return cell.find_first_not_of(" \t") == std::string_view::npos;
}

// Blanks around a number are common in hand-written CSV and a leading '+' is
// plain decimal, but from_chars rejects both.
std::optional<double> parse_number(std::string_view s) noexcept {
  s.remove_prefix(std::min(s.find_first_not_of(" \t"), s.size()));
  s = s.substr(0, s.find_last_not_of(" \t") + 1);
  if (s.starts_with('+')) {
    s.remove_prefix(1);
    if (s.starts_with('-')) return std::nullopt;
  }
  double d = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

}  // namespace jobs::processing::detail
