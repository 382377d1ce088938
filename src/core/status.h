// Status: how core code reports failure (no exceptions cross the core API).
#pragma once

#include <cstddef>

namespace vecext {

enum class StatusCode : unsigned char {
  kOk = 0,
  kInvalidInput,     // malformed text or binary input
  kOutOfRange,       // a value does not fit (float overflow, too many dims)
  kNotFinite,        // NaN or infinity where a finite value is required
  kLimitExceeded,    // a size limit is exceeded
  kOutOfMemory,      // allocation failed
  kCancelled,        // the caller asked to stop
  kCorrupted,        // stored data is inconsistent
  kInternal,         // a bug or an unexpected library failure
};

// A small value type: a code and a static or caller-owned message.
// Trivially destructible, so it may live in frames Postgres can longjmp over.
struct Status {
  StatusCode code = StatusCode::kOk;
  const char* message = "";  // REQUIRES: static storage duration

  static constexpr Status Ok() { return Status{}; }
  static constexpr Status Error(StatusCode c, const char* msg) { return Status{c, msg}; }
  constexpr bool ok() const { return code == StatusCode::kOk; }
};

}  // namespace vecext
