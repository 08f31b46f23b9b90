// UTF-8 decoding that never fails, and the code-point classes of the GPT-2
// pre-tokenizer regex. Invalid bytes decode as one-byte "other" characters so
// that byte-level tokenization still round-trips them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sde::llm {

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

struct DecodedChar {
  uint32_t codepoint;  // kInvalidCodepoint for a byte that starts no valid sequence
  uint32_t length;     // bytes consumed, >= 1
};

inline constexpr uint32_t kInvalidCodepoint = 0xFFFFFFFFu;

// Decodes the character at text[pos] (pos < size). Rejects overlong forms,
// surrogates and values above U+10FFFF, consuming one byte for each.
DecodedChar decode_utf8(const char* text, size_t size, size_t pos);

CharClass char_class(uint32_t codepoint);

// Replaces each maximal invalid subsequence with U+FFFD, as Python's
// errors="replace" and Rust's String::from_utf8_lossy do.
std::string utf8_lossy(const std::string& bytes);

void append_utf8(std::string& out, uint32_t codepoint);

}  // namespace sde::llm
