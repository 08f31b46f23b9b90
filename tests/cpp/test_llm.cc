// Tokenizer and sampler checks that need no model files, run natively, under
// qemu-aarch64 and in WebAssembly. The sampler's draws for a fixed seed are
// pinned here, so every platform must reproduce the x86 sequence exactly.
// (Agreement with PyPI tokenizers on SmolLM2 is tests/python/test_tokenizer.py.)
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "llm/pretokenize.h"
#include "llm/sampling.h"
#include "llm/tokenizer.h"
#include "llm/unicode.h"

namespace {

int failures = 0;

#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                    \
    }                                                                \
  } while (0)

std::vector<std::string> pieces(const std::string& text, bool split_digits) {
  std::vector<std::pair<size_t, size_t>> ranges;
  sde::llm::pretokenize(text.data(), text.size(), {split_digits}, ranges);
  std::vector<std::string> out;
  for (auto [a, b] : ranges) out.push_back(text.substr(a, b - a));
  return out;
}

void test_pretokenize() {
  using V = std::vector<std::string>;
  CHECK(pieces("Hello world", false) == (V{"Hello", " world"}));
  CHECK(pieces("I'm  here\n", false) == (V{"I", "'m", " ", " here", "\n"}));
  CHECK(pieces("a123 b", true) == (V{"a", "1", "2", "3", " b"}));
  CHECK(pieces("a123 b", false) == (V{"a", "123", " b"}));
  CHECK(pieces("x!? \xC3\xA9t\xC3\xA9", false) == (V{"x", "!?", " \xC3\xA9t\xC3\xA9"}));
  CHECK(pieces("\xFF\xFEz", false) == (V{"\xFF\xFE", "z"}));  // invalid bytes are "other"
  CHECK(pieces("\xE6\x97", false) == (V{"\xE6\x97"}));        // truncated character
}

void test_unicode() {
  using sde::llm::CharClass;
  CHECK(sde::llm::char_class(0x65E5) == CharClass::kLetter);  // 日
  CHECK(sde::llm::char_class(0x0663) == CharClass::kNumber);  // Arabic-Indic 3
  CHECK(sde::llm::char_class(0x3000) == CharClass::kSpace);   // ideographic space
  CHECK(sde::llm::char_class(0x1F389) == CharClass::kOther);  // emoji
  CHECK(sde::llm::utf8_lossy("a\xE6\x97" "b\xFF") == "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
}

const char* kTinyTokenizer = R"({
  "added_tokens": [{"id": 7, "content": "<s>", "special": true, "single_word": false,
                    "lstrip": false, "rstrip": false, "normalized": false}],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
  "model": {"type": "BPE", "dropout": null, "unk_token": null, "fuse_unk": false, "byte_fallback": false,
            "vocab": {"a": 0, "b": 1, "c": 2, "\u0120": 3, "ab": 4, "abc": 5, "\u0120ab": 6, "<s>": 7},
            "merges": [["a", "b"], "ab c", ["\u0120", "ab"]]}
})";

void test_tokenizer() {
  auto tok = sde::llm::Tokenizer::from_json(kTinyTokenizer);
  CHECK(tok->vocab_size() == 8);
  const std::vector<int32_t> ids = tok->encode("ab abc<s>c");
  CHECK(ids == (std::vector<int32_t>{4, 3, 5, 7, 2}));  // "ab c" (rank 1) beats "Ġ ab" (rank 2)
  CHECK(tok->decode(ids.data(), ids.size(), false) == "ab abc<s>c");
  CHECK(tok->decode(ids.data(), ids.size(), true) == "ab abcc");
  for (const char* bad : {"{", "[]", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "z"]]},
                                      "pre_tokenizer": {"type": "ByteLevel"}})"}) {
    try {
      sde::llm::Tokenizer::from_json(bad);
      CHECK(false);
    } catch (const sde::Error& e) {
      CHECK(e.code() == sde::StatusCode::kInvalidModel);
    }
  }
}

void test_sampling() {
  std::mt19937_64 reference;  // the standard pins the 10000th output of the default seed
  reference.discard(9999);
  CHECK(reference() == 9981545732273789042ull);

  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = static_cast<float>((i * 37) % 101) / 10.0f;
  sde::llm::Sampler greedy({0.0f, 0, 1.0f, 1});
  CHECK(greedy.sample(logits.data(), logits.size()) == sde::llm::argmax(logits.data(), logits.size()));

  sde::llm::Sampler sampler({0.8f, 20, 0.9f, 42});
  std::vector<int32_t> draws;
  for (int i = 0; i < 16; ++i) draws.push_back(sampler.sample(logits.data(), logits.size()));
  const std::vector<int32_t> expected = {38, 8, 38, 30, 27, 30, 79, 90, 90, 19, 30, 49, 8, 79, 98, 87};
  if (draws != expected) {
    std::fprintf(stderr, "draws:");
    for (int32_t d : draws) std::fprintf(stderr, " %d,", d);
    std::fprintf(stderr, "\n");
  }
  CHECK(draws == expected);

  for (const sde::llm::SamplingOptions& bad : {sde::llm::SamplingOptions{-1.0f, 0, 1.0f, 0},
                                               sde::llm::SamplingOptions{1.0f, -2, 1.0f, 0},
                                               sde::llm::SamplingOptions{1.0f, 0, 0.0f, 0}}) {
    try {
      sde::llm::Sampler s(bad);
      CHECK(false);
    } catch (const sde::Error& e) {
      CHECK(e.code() == sde::StatusCode::kInvalidArgument);
    }
  }
}

}  // namespace

int main() {
  test_unicode();
  test_pretokenize();
  test_tokenizer();
  test_sampling();
  if (failures) {
    std::fprintf(stderr, "test_llm: %d check(s) failed\n", failures);
    return 1;
  }
  std::printf("test_llm: all checks passed\n");
  return 0;
}
