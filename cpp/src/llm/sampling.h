// Picking the next token from logits: greedy, temperature, top-k and top-p
// (nucleus), with a seeded generator whose draws are the same on every
// platform (std::mt19937_64's output is specified by the standard; the
// uniform draw is built from its raw bits here, because
// std::uniform_real_distribution is implementation-defined).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace sde::llm {

struct SamplingOptions {
  float temperature = 1.0f;  // 0 = greedy; must be >= 0 and finite
  int32_t top_k = 0;         // keep the k most likely tokens; 0 = all
  float top_p = 1.0f;        // keep the smallest set whose probability reaches top_p; in (0, 1]
  uint64_t seed = 0;
};

// Throws Error(kInvalidArgument) when an option is out of range.
void validate(const SamplingOptions& options);

// Index of the largest logit; the lowest index wins ties (as numpy.argmax).
int32_t argmax(const float* logits, size_t count);

class Sampler {
 public:
  explicit Sampler(const SamplingOptions& options);  // validates

  // Draws one token id. NaN logits or all -inf -> Error(kInvalidArgument).
  // Temperature 0, top_k 1 and a top_p that keeps one token all reduce to argmax.
  int32_t sample(const float* logits, size_t count);

  const SamplingOptions& options() const { return options_; }

 private:
  double uniform();  // in [0, 1), from the top 53 bits of one 64-bit draw

  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<std::pair<double, int32_t>> candidates_;  // scratch, reused across calls
};

// True when `id` is one of `stop_ids` (generation ends on any of them).
bool is_stop_token(int32_t id, const std::vector<int32_t>& stop_ids);

}  // namespace sde::llm
