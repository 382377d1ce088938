// PostgreSQL's binary COPY format for collection rows, both ways, and the
// JSON Lines form of an exported row. No libpq.
//
// Stream: the 11-byte signature "PGCOPY\n\377\r\n\0", int32 flags (0),
// int32 header-extension length (0); then per row an int16 field count and,
// per field, an int32 byte length (-1: NULL) and the bytes of the type's
// send/recv form; then int16 -1. All integers big-endian. The forms used:
//   text    the UTF-8 bytes (client_encoding UTF8)
//   vector  int16 dim, int16 0, dim x float4 (src/core/vector_binary.h)
//   jsonb   a version byte 1, then the JSON text
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "record.h"

namespace vecext::cli {

inline constexpr char kCopySignature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};
inline constexpr std::size_t kCopyHeaderSize = 19;

// Appends the stream header.
void AppendCopyHeader(std::string* out);

// Appends one row: (id, embedding, metadata), plus document (text or NULL)
// when with_document, plus ord (int8) when ord >= 0 (an upsert's staging order).
// REQUIRES: 1 <= rec.vector.size() <= 32767.
void AppendCopyRow(std::string* out, const Record& rec, bool with_document, std::int64_t ord = -1);

// Appends the trailer (int16 -1).
void AppendCopyTrailer(std::string* out);

// Decodes a binary COPY stream fed in pieces of any size.
class CopyDecoder {
 public:
  enum class Result : unsigned char { kRow, kNeedMore, kEnd, kError };

  // Appends bytes of the stream.
  void Feed(const char* data, std::size_t len);

  // The next row: *fields gets one view per column (data() == nullptr for
  // NULL), valid until the next Feed or Next call. kNeedMore: feed more.
  // kError: *why says what is wrong.
  Result Next(std::vector<std::string_view>* fields, std::string* why);

 private:
  std::string buf_;
  std::size_t pos_ = 0;
  bool header_done_ = false;
  bool ended_ = false;
};

// Appends one JSON Lines record, exactly as the Python client's
// export_json writes it:
//   {"id": "...", "embedding": [x,...], "metadata": {...}[, "document": "..."]}\n
// vector_binary and jsonb_binary are the columns' binary forms; document is
// written when its data() is not nullptr. Each element is the shortest
// decimal that reads back as the same float4 (the server's own text form).
// Returns false with *why set when a binary form is malformed.
bool AppendExportLine(std::string* out, std::string_view id, std::string_view vector_binary,
                      std::string_view jsonb_binary, std::string_view document, std::string* why);

}  // namespace vecext::cli
