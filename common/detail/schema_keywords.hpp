#pragma once
// The keywords a job type's schema may use beyond what valijson 1.0 checks
// (detail of common/schema.cpp), so that a member the worker would refuse is
// refused at submission by the schema alone, for any job type:
//
//   "contentEncoding": "base64"     the string is standard base64 (RFC 4648
//                                   section 4, no white space) with its
//                                   padding, decoded by common/base64.hpp as
//                                   the workers decode it
//   "x-base64-padding": "optional"  beside it: the `=` padding may also be
//                                   left out ("required", the default, is
//                                   what contentEncoding alone says)
//   "format": "webhook-url"         the string is a URL the webhooks worker
//                                   delivers to (common/webhook_url.hpp)
//   "x-max-total-items": {"of": ["to", "cc", "bcc"], "maximum": 100}
//                                   on an object: those of its members that
//                                   are arrays hold at most `maximum` items
//                                   together (the error is at the last one
//                                   named that has items)
//   "x-structured-fields": {"names": ["References", ...], "maxWord": 900}
//                                   on an object: its members so named (in
//                                   any case) that are strings hold printable
//                                   ASCII, no run without a space longer than
//                                   maxWord (email: header fields that may
//                                   not be encoded-words, folded at spaces)
//   "x-case-insensitive-names": true
//                                   on an object: no two member names that
//                                   differ only in ASCII case (the error is
//                                   at the object, naming the second)
//
// The other draft-07 formats are left to valijson (it checks date, time and
// date-time, and takes the rest unchecked). An unknown format name, any
// other contentEncoding, or an x-base64-padding without contentEncoding
// "base64" is an error when the schema is loaded, never a check skipped.
// Values that are not strings pass, as JSON Schema says.
//
// Thread-safety: the constraints are read-only once built.

namespace boost::json {
class object;
}
namespace valijson {
class SchemaParser;
}

namespace jobs::detail {

/// Checks the keywords above in one schema object (not in its subschemas)
/// and folds x-base64-padding into contentEncoding for the builder.
/// Throws std::runtime_error saying what is wrong.
void prepare_content_keywords(boost::json::object& schema);

/// Gives `parser` the builders of contentEncoding, format, x-max-total-items,
/// x-structured-fields and x-case-insensitive-names.
void add_keyword_builders(valijson::SchemaParser& parser);

}  // namespace jobs::detail
