#pragma once
// An RFC 4180 CSV reader over text held in memory (detail of csv.aggregate).
//
// - A field starting with '"' is quoted: it may hold the delimiter, CR, LF,
//   and '""' for one quote; after the closing quote only the delimiter, a
//   line end or the end of input may follow.
// - A '"' inside an unquoted field is kept as is.
// - Records end in LF or CRLF; a lone CR is data. The last record needs no
//   line end. Empty lines are skipped (write `""` for a one-column record
//   holding an empty field). A UTF-8 BOM at the very start is skipped.
//
// Not thread-safe; one reader per text. The text must outlive the reader.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jobs::processing::detail {

class csv_reader {
 public:
  enum class status { record, end, error };

  /// A record with more than `max_fields` fields is an error, which bounds
  /// the memory one record can take.
  csv_reader(std::string_view text, char delimiter,
             std::size_t max_fields = static_cast<std::size_t>(-1)) noexcept;

  /// Reads the next record into `fields` (cleared first). After `error`,
  /// `error_message()` says what and where; the reader stays in error.
  status next(std::vector<std::string>& fields);

  /// 1-based line on which the last record read (or the error) started.
  std::size_t line() const noexcept { return record_line_; }
  const std::string& error_message() const noexcept { return error_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  char delimiter_;
  std::size_t max_fields_;
  std::size_t current_line_ = 1;
  std::size_t record_line_ = 0;
  std::string error_;
};

/// True for a cell that is empty or holds only spaces and tabs.
bool is_blank(std::string_view cell) noexcept;

/// A cell as a finite decimal double (std::from_chars' general format), with
/// surrounding spaces and tabs and one leading '+' allowed; nullopt otherwise,
/// including for inf, nan and values out of range.
std::optional<double> parse_number(std::string_view cell) noexcept;

}  // namespace jobs::processing::detail
