// Byte-level BPE tokenizer (GPT-2 family, SmolLM2) read from a Hugging Face
// tokenizer.json as the exporter writes it. Encoding matches PyPI
// `tokenizers`: special tokens are matched first (leftmost, longest) and
// never split; the rest is pre-tokenized (llm/pretokenize.h), mapped byte by
// byte to GPT-2's printable alphabet and merged by BPE rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llm/pretokenize.h"

namespace sde::llm {

class Tokenizer {
 public:
  // Throws Error(kFileNotFound) for a missing file, Error(kInvalidModel) for a
  // malformed one and Error(kUnsupported) for a valid tokenizer.json whose
  // model, normalizer or pre-tokenizer this runtime does not implement.
  static std::unique_ptr<Tokenizer> from_file(const std::string& path);
  static std::unique_ptr<Tokenizer> from_json(const std::string& json_text);

  // Any byte string is accepted; invalid UTF-8 bytes are encoded as bytes.
  std::vector<int32_t> encode(const std::string& text) const;

  // The raw bytes of the tokens (may end inside a UTF-8 character, which is
  // what streaming generation wants). Out-of-range ids -> Error(kInvalidArgument).
  std::string decode_bytes(const int32_t* ids, size_t count, bool skip_special_tokens) const;
  // decode_bytes made valid UTF-8 (invalid sequences become U+FFFD), like tokenizers' decode.
  std::string decode(const int32_t* ids, size_t count, bool skip_special_tokens) const;

  size_t vocab_size() const { return token_bytes_.size(); }
  bool is_special(int32_t id) const;
  // -1 when the token is not in the vocabulary.
  int32_t token_to_id(const std::string& token) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };
  struct SpecialToken {
    std::string text;
    int32_t id;
  };

  Tokenizer() = default;
  void bpe(const char* piece, size_t size, std::vector<int32_t>& out) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  PreTokenizerOptions pre_options_;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> token_bytes_;  // id -> bytes it decodes to
  std::vector<bool> special_;             // id -> special (skippable) token
  std::vector<bool> known_;               // id -> present in the file
  int32_t byte_token_[256];               // byte -> id of its one-character token, or -1
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<std::vector<SpecialToken>> specials_by_first_byte_;  // longest first
};

}  // namespace sde::llm
