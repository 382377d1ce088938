// Reading import records from a file: JSON Lines (one record per line, read
// in chunks, any size) or one JSON array of records (read whole). No libpq.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <simdjson.h>

#include "record.h"

namespace vecext::cli {

enum class InputFormat : unsigned char {
  kAuto = 0,  // '[' as the first non-space byte: a JSON array; else JSON Lines
  kJsonLines,
  kJsonArray,
};

// Where a record came from, for messages: "FILE:LINE" and, in a JSON array
// file, "record N" (1-based).
struct RecordLocation {
  std::uint64_t line = 0;    // 1-based line where the record starts
  std::uint64_t record = 0;  // 1-based index among the file's records (lines or elements)
};

// "file:12", or "file:12: record 3" in an array file; "file" when line is 0.
std::string FormatLocation(const std::string& file, InputFormat format, const RecordLocation& loc);

enum class ReadResult : unsigned char {
  kRecord,     // *record holds a valid record
  kInvalid,    // a bad record (*why); reading may go on
  kEnd,        // no more records
  kFatal,      // the file cannot be read on (I/O error, or bad JSON in an array file) (*why)
};

class RecordReader {
 public:
  explicit RecordReader(RecordParserOptions options = {});
  ~RecordReader();
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // Opens path ("-": standard input). Returns false with *why set on failure.
  bool Open(const std::string& path, InputFormat format, std::string* why);

  // The next record. expected_dim > 0: vectors of another length are kInvalid.
  // *loc is set for kRecord and kInvalid (and for kFatal when known).
  ReadResult Next(int expected_dim, Record* record, RecordLocation* loc, std::string* why);

  InputFormat format() const { return format_; }
  // Bytes of input consumed so far (for throughput figures).
  std::uint64_t bytes_read() const { return bytes_; }

 private:
  ReadResult NextLine(int expected_dim, Record* record, RecordLocation* loc, std::string* why);
  ReadResult NextElement(int expected_dim, Record* record, RecordLocation* loc, std::string* why);
  // Reads more of the file into the line buffer; false at end of file or on error (*why).
  bool Fill(std::string* why);
  // Loads the rest of the file into doc_ (array format).
  bool LoadWhole(std::string* why);

  RecordParser parser_;
  int fd_ = -1;
  bool own_fd_ = false;
  bool eof_ = false;
  InputFormat format_ = InputFormat::kAuto;
  std::uint64_t bytes_ = 0;
  std::uint64_t line_ = 0;    // lines consumed (JSON Lines) / newlines counted (array)
  std::uint64_t record_ = 0;

  // JSON Lines: buf_[begin_, end_) is unread data; capacity cap_ always
  // leaves SIMDJSON_PADDING bytes after end_.
  char* buf_ = nullptr;
  std::size_t cap_ = 0, begin_ = 0, end_ = 0;

  // JSON array.
  struct ArrayState;
  std::unique_ptr<ArrayState> array_;
};

}  // namespace vecext::cli
