#pragma once
// The built-in `processing` handlers: pure functions of the payload, safe to
// run on any number of threads at once. Registered by
// `register_processing_handlers` (workers/handler.hpp) on queue "processing".
//
// Payloads are validated against schemas/jobs/processing.<type>.schema.json
// by the API before a job is accepted; the handlers check again and answer
// bad input with `handler_error::permanent`, never with a crash. Unknown
// payload fields are ignored here (the schema rejects them).
//
// noop           {"sleep_ms"?: 0..60000, "cpu_ms"?: 0..60000, "echo"?: any, "pad"?: string}
//                -> {"ok": true, "echo"?: <echo>}
//   Burns `cpu_ms` of its thread's CPU time (a CPU-bound step for
//   benchmarks), then sleeps in `noop_limits::sleep_step` steps, both while
//   watching `ctx.stop_requested()`; when stopped early it snoozes until
//   now, so the interrupted attempt is not counted. `pad` is ignored: it
//   sizes a benchmark's payload.
//
// hash           {"algorithm"?: "sha256" (default) | "sha1" | "sha384" | "sha512" | "md5" |
//                 "sha3-256" | "blake2b512",
//                 "input": UTF-8 text  XOR  "input_base64": standard base64 (padding optional),
//                 "encoding"?: "hex" (default, lower case) | "base64" (padded)}
//                -> {"algorithm", "digest", "encoding", "bytes": input length in bytes}
//
// csv.aggregate  {"csv": RFC 4180 text with a header row,
//                 "delimiter"?: tab or one printable ASCII character but '"' (default ","),
//                 "group_by"?: [column, ...] (default [], one group of all rows),
//                 "aggregates": [{"op": "count"|"sum"|"min"|"max"|"avg",
//                                 "column"?: name (required except for count),
//                                 "as"?: output name (default "<op>_<column>", or "count")}]}
//                -> {"rows": [{<group columns as strings>, <aggregates>}],
//                    "row_count": data rows read, "group_count": rows.size()}
//   Groups come in order of first appearance; with no group_by there is
//   always exactly one row, even for a CSV without data rows (as in SQL).
//   `count` counts rows, or with a column its non-blank cells. Numeric ops
//   parse cells as finite decimal doubles (surrounding blanks allowed), skip
//   blank cells (empty, or spaces and tabs only), and give null for
//   min/max/avg over no values and 0 for sum.
//   Integral results within +-2^53 are JSON integers, others doubles.
//   Quoted fields may hold delimiters, line breaks and "" escapes; lines end
//   in LF or CRLF; empty lines and a leading UTF-8 BOM are skipped.
//   Permanent errors: an unknown or ambiguous column, a row with the wrong
//   number of fields or a non-numeric cell in a numeric op (named by 1-based
//   data row and line), malformed quoting, clashing output names, a sum
//   overflowing a double, any limit below exceeded.

#include "workers/handler.hpp"

#include <chrono>
#include <cstddef>

namespace jobs::processing {

struct noop_limits {
  static constexpr int max_sleep_ms = 60'000;
  static constexpr int max_cpu_ms = 60'000;
  static constexpr std::chrono::milliseconds sleep_step{10};
};

struct hash_limits {
  static constexpr std::size_t max_input_bytes = 1 << 20;  ///< after base64 decoding
};

struct csv_limits {
  static constexpr std::size_t max_csv_bytes = 4 << 20;
  static constexpr std::size_t max_group_by = 8;
  static constexpr std::size_t max_aggregates = 32;
  static constexpr std::size_t max_columns = 4096;     ///< fields per row
  static constexpr std::size_t max_groups = 10'000;    ///< bounds the stored result
  static constexpr std::size_t max_name_length = 256;  ///< column and output names
};

handler_result noop_handler(const job_context& ctx);
handler_result hash_handler(const job_context& ctx);
handler_result csv_aggregate_handler(const job_context& ctx);

}  // namespace jobs::processing
