// Binary COPY encoding and decoding, JSON Lines export lines (copy_binary.h).
#include "copy_binary.h"

#include <cstring>

#include "core/vector_binary.h"
#include "core/vector_text.h"

namespace vecext::cli {

namespace {

inline void PutU16(std::string* out, std::uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
  out->append(b, 2);
}

inline void PutU32(std::string* out, std::uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xff),
                     static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
  out->append(b, 4);
}

inline std::uint32_t GetU32(const char* p) {
  const unsigned char* u = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) | u[3];
}

inline std::uint16_t GetU16(const char* p) {
  const unsigned char* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<std::uint16_t>((u[0] << 8) | u[1]);
}

}  // namespace

void AppendCopyHeader(std::string* out) {
  out->append(kCopySignature, sizeof(kCopySignature));
  PutU32(out, 0);  // flags: no OIDs
  PutU32(out, 0);  // no header extension
}

void AppendCopyRow(std::string* out, const Record& rec, bool with_document, std::int64_t ord) {
  const int dim = static_cast<int>(rec.vector.size());
  PutU16(out, static_cast<std::uint16_t>(3 + (with_document ? 1 : 0) + (ord >= 0 ? 1 : 0)));
  PutU32(out, static_cast<std::uint32_t>(rec.id.size()));
  out->append(rec.id);
  const std::size_t vbytes = VectorBinarySize(dim);
  PutU32(out, static_cast<std::uint32_t>(vbytes));
  const std::size_t at = out->size();
  out->resize(at + vbytes);
  EncodeVectorBinary(rec.vector.data(), dim, reinterpret_cast<unsigned char*>(&(*out)[at]));
  PutU32(out, static_cast<std::uint32_t>(rec.metadata.size() + 1));
  out->push_back('\1');  // jsonb binary format version
  out->append(rec.metadata);
  if (with_document) {
    if (rec.has_document) {
      PutU32(out, static_cast<std::uint32_t>(rec.document.size()));
      out->append(rec.document);
    } else {
      PutU32(out, 0xffffffffu);  // NULL
    }
  }
  if (ord >= 0) {
    PutU32(out, 8);
    PutU32(out, static_cast<std::uint32_t>(static_cast<std::uint64_t>(ord) >> 32));
    PutU32(out, static_cast<std::uint32_t>(static_cast<std::uint64_t>(ord) & 0xffffffffu));
  }
}

void AppendCopyTrailer(std::string* out) { PutU16(out, 0xffff); }

void CopyDecoder::Feed(const char* data, std::size_t len) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (std::size_t{1} << 20) && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, len);
}

CopyDecoder::Result CopyDecoder::Next(std::vector<std::string_view>* fields, std::string* why) {
  fields->clear();
  if (ended_) return Result::kEnd;
  const char* p = buf_.data() + pos_;
  std::size_t avail = buf_.size() - pos_;
  if (!header_done_) {
    if (avail < kCopyHeaderSize) return Result::kNeedMore;
    if (std::memcmp(p, kCopySignature, sizeof(kCopySignature)) != 0) {
      *why = "not a binary COPY stream (bad signature)";
      return Result::kError;
    }
    const std::uint32_t flags = GetU32(p + 11);
    if ((flags & 0xffff0000u) != 0 || (flags & (1u << 16)) != 0) {
      *why = "unsupported binary COPY flags";
      return Result::kError;
    }
    const std::uint32_t ext = GetU32(p + 15);
    if (avail < kCopyHeaderSize + ext) return Result::kNeedMore;
    pos_ += kCopyHeaderSize + ext;
    header_done_ = true;
    p = buf_.data() + pos_;
    avail = buf_.size() - pos_;
  }
  if (avail < 2) return Result::kNeedMore;
  const std::int16_t nfields = static_cast<std::int16_t>(GetU16(p));
  if (nfields == -1) {
    pos_ += 2;
    ended_ = true;
    return Result::kEnd;
  }
  if (nfields < 0) {
    *why = "bad field count in binary COPY stream";
    return Result::kError;
  }
  std::size_t off = 2;
  for (int i = 0; i < nfields; i++) {
    if (avail < off + 4) return Result::kNeedMore;
    const std::int32_t n = static_cast<std::int32_t>(GetU32(p + off));
    off += 4;
    if (n == -1) {
      fields->emplace_back();
      continue;
    }
    if (n < 0) {
      *why = "bad field length in binary COPY stream";
      return Result::kError;
    }
    if (avail < off + static_cast<std::size_t>(n)) return Result::kNeedMore;
    fields->emplace_back(p + off, static_cast<std::size_t>(n));
    off += static_cast<std::size_t>(n);
  }
  pos_ += off;
  return Result::kRow;
}

bool AppendExportLine(std::string* out, std::string_view id, std::string_view vector_binary,
                      std::string_view jsonb_binary, std::string_view document, std::string* why) {
  thread_local std::vector<float> x(kVectorMaxDim);
  VectorBinaryResult vr;
  Status st = DecodeVectorBinary(reinterpret_cast<const unsigned char*>(vector_binary.data()),
                                 vector_binary.size(), -1, x.data(), &vr);
  if (!st.ok()) {
    *why = std::string("malformed vector from the server: ") + st.message;
    return false;
  }
  if (jsonb_binary.empty() || jsonb_binary[0] != 1) {
    *why = "unsupported jsonb binary format version from the server";
    return false;
  }
  out->append("{\"id\": ");
  AppendJsonString(out, id);
  out->append(", \"embedding\": ");
  const std::size_t at = out->size();
  out->resize(at + VectorTextBufferSize(vr.dim));
  const std::size_t n = FormatVectorText(x.data(), vr.dim, &(*out)[at]);
  out->resize(at + n);
  out->append(", \"metadata\": ");
  out->append(jsonb_binary.data() + 1, jsonb_binary.size() - 1);
  if (document.data() != nullptr) {
    out->append(", \"document\": ");
    AppendJsonString(out, document);
  }
  out->append("}\n");
  return true;
}

}  // namespace vecext::cli
