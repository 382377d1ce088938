// Reading import records from JSON Lines and JSON array files (reader.h).
#include "reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace vecext::cli {

namespace od = simdjson::ondemand;

namespace {

constexpr std::size_t kChunk = std::size_t{4} << 20;  // bytes per read() of a JSON Lines file
constexpr std::size_t kPad = simdjson::SIMDJSON_PADDING;

inline bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

struct RecordReader::ArrayState {
  simdjson::padded_string text;
  od::parser parser;
  od::document doc;
  od::array_iterator it, end;
  const char* counted = nullptr;  // newlines before this byte are counted in line_
  bool started = false;
};

std::string FormatLocation(const std::string& file, InputFormat format, const RecordLocation& loc) {
  if (loc.line == 0) return file;
  std::string s = file + ":" + std::to_string(loc.line);
  if (format == InputFormat::kJsonArray && loc.record > 0) s += ": record " + std::to_string(loc.record);
  return s;
}

RecordReader::RecordReader(RecordParserOptions options) : parser_(options) {}

RecordReader::~RecordReader() {
  if (own_fd_ && fd_ >= 0) close(fd_);
  std::free(buf_);
}

bool RecordReader::Open(const std::string& path, InputFormat format, std::string* why) {
  if (path == "-") {
    fd_ = STDIN_FILENO;
    own_fd_ = false;
  } else {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      *why = Errno(path.c_str());
      return false;
    }
    own_fd_ = true;
  }
  cap_ = kChunk + kPad;
  buf_ = static_cast<char*>(std::malloc(cap_));
  if (buf_ == nullptr) {
    *why = "out of memory";
    return false;
  }
  // Look at the first non-space byte (after a UTF-8 byte order mark).
  bool bom_checked = false;
  for (;;) {
    if (!bom_checked && (end_ - begin_ >= 3 || eof_)) {
      if (end_ - begin_ >= 3 && std::memcmp(buf_ + begin_, "\xEF\xBB\xBF", 3) == 0) begin_ += 3;
      bom_checked = true;
    }
    std::size_t i = begin_;
    while (i < end_ && IsJsonSpace(buf_[i])) i++;
    if (bom_checked && (i < end_ || eof_)) {
      if (format == InputFormat::kAuto) {
        format = (i < end_ && buf_[i] == '[') ? InputFormat::kJsonArray : InputFormat::kJsonLines;
      }
      break;
    }
    if (!Fill(why) && !why->empty()) return false;
  }
  format_ = format;
  if (format_ == InputFormat::kJsonArray) return LoadWhole(why);
  return true;
}

bool RecordReader::Fill(std::string* why) {
  why->clear();
  if (eof_) return false;
  if (begin_ > 0) {  // move the unread tail to the front
    std::memmove(buf_, buf_ + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (cap_ - end_ < kPad + kChunk / 2) {  // a long line: grow
    std::size_t want = cap_ * 2;
    char* b = static_cast<char*>(std::realloc(buf_, want));
    if (b == nullptr) {
      *why = "out of memory (a line longer than " + std::to_string(cap_ / 2) + " bytes?)";
      return false;
    }
    buf_ = b;
    cap_ = want;
  }
  for (;;) {
    ssize_t n = read(fd_, buf_ + end_, cap_ - end_ - kPad);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      *why = Errno("read");
      return false;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    end_ += static_cast<std::size_t>(n);
    return true;
  }
}

bool RecordReader::LoadWhole(std::string* why) {
  while (Fill(why)) {
  }
  if (!why->empty()) return false;
  array_ = std::make_unique<ArrayState>();
  array_->text = simdjson::padded_string(buf_ + begin_, end_ - begin_);
  std::free(buf_);
  buf_ = nullptr;
  cap_ = begin_ = end_ = 0;
  return true;
}

ReadResult RecordReader::Next(int expected_dim, Record* record, RecordLocation* loc, std::string* why) {
  if (format_ == InputFormat::kJsonArray) return NextElement(expected_dim, record, loc, why);
  return NextLine(expected_dim, record, loc, why);
}

ReadResult RecordReader::NextLine(int expected_dim, Record* record, RecordLocation* loc, std::string* why) {
  for (;;) {
    char* start = buf_ + begin_;
    char* nl = static_cast<char*>(std::memchr(start, '\n', end_ - begin_));
    std::size_t len;
    if (nl != nullptr) {
      len = static_cast<std::size_t>(nl - start);
    } else if (eof_) {
      if (begin_ == end_) return ReadResult::kEnd;
      len = end_ - begin_;
    } else {
      if (!Fill(why) && !why->empty()) return ReadResult::kFatal;
      continue;
    }
    const std::size_t consumed = len + (nl != nullptr ? 1 : 0);
    begin_ += consumed;
    bytes_ += consumed;
    line_++;
    std::size_t i = 0;
    while (i < len && IsJsonSpace(start[i])) i++;
    if (i == len) continue;  // a blank line
    record_++;
    loc->line = line_;
    loc->record = record_;
    // The line's bytes are followed by the rest of the buffer and kPad spare bytes.
    const std::size_t capacity = static_cast<std::size_t>((buf_ + cap_) - start);
    RecordStatus s = parser_.ParseText(start, len, capacity, expected_dim, record, why);
    return s == RecordStatus::kOk ? ReadResult::kRecord : ReadResult::kInvalid;
  }
}

ReadResult RecordReader::NextElement(int expected_dim, Record* record, RecordLocation* loc, std::string* why) {
  ArrayState& a = *array_;
  const char* base = a.text.data();
  auto count_lines_to = [&](const char* p) {
    while (a.counted < p) {
      const void* q = std::memchr(a.counted, '\n', static_cast<std::size_t>(p - a.counted));
      if (q == nullptr) {
        a.counted = p;
        break;
      }
      line_++;
      a.counted = static_cast<const char*>(q) + 1;
    }
  };
  auto fatal = [&](simdjson::error_code e, const char* where) {
    const char* p = nullptr;
    if (!a.doc.current_location().get(p) && p != nullptr) count_lines_to(p);
    loc->line = line_;
    loc->record = record_ + 1;
    *why = std::string("invalid JSON ") + where + ": " + simdjson::error_message(e) +
           " (the rest of the file cannot be read)";
    return ReadResult::kFatal;
  };
  if (!a.started) {
    a.started = true;
    a.counted = base;
    line_ = 1;
    od::array arr;
    simdjson::error_code e = a.parser.iterate(a.text).get(a.doc);
    if (!e) e = a.doc.get_array().get(arr);
    if (e) {
      loc->line = 0;
      loc->record = 0;
      std::string detail = simdjson::error_message(e);
      if (!detail.empty() && detail.back() == '.') detail.pop_back();
      *why = "invalid JSON: not one well-formed array of records (" + detail +
             "; look for a missing ']' or data after it)";
      return ReadResult::kFatal;
    }
    if (auto e = arr.begin().get(a.it)) return fatal(e, "");
    if (auto e = arr.end().get(a.end)) return fatal(e, "");
  } else if (a.it == a.end) {
    return ReadResult::kEnd;
  } else {
    ++a.it;
  }
  if (a.it == a.end) {
    const char* rest = nullptr;
    if (!a.doc.current_location().get(rest)) {
      count_lines_to(rest);
      loc->line = line_;
      loc->record = record_ + 1;
      *why = "invalid JSON: data after the closing ']' of the array";
      return ReadResult::kFatal;
    }
    bytes_ = a.text.size();
    return ReadResult::kEnd;
  }
  od::value value;
  if (auto e = (*a.it).get(value)) return fatal(e, "");
  record_++;
  count_lines_to(value.raw_json_token().data());
  loc->line = line_;
  loc->record = record_;
  RecordStatus s = parser_.Parse(value, expected_dim, record, why);
  const char* p = nullptr;
  if (!value.current_location().get(p) && p != nullptr) bytes_ = static_cast<std::uint64_t>(p - base);
  if (s == RecordStatus::kSyntax) {
    *why += " (the rest of the file cannot be read)";
    return ReadResult::kFatal;
  }
  return s == RecordStatus::kOk ? ReadResult::kRecord : ReadResult::kInvalid;
}

}  // namespace vecext::cli
