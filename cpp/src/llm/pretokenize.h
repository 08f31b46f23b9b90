// The pre-tokenizer of byte-level BPE tokenizers such as GPT-2's and
// SmolLM2's: optionally isolate every numeric character (tokenizers'
// Digits(individual_digits=True)), then split each part with the GPT-2 regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// implemented by hand (no regex engine) with Oniguruma's semantics.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace sde::llm {

struct PreTokenizerOptions {
  bool split_digits = false;
};

// Appends the pieces of text[0, size) to `pieces` as byte ranges [first, last).
// Any byte string is accepted: invalid UTF-8 bytes are one-byte "other" characters.
void pretokenize(const char* text, size_t size, const PreTokenizerOptions& options,
                 std::vector<std::pair<size_t, size_t>>& pieces);

}  // namespace sde::llm
