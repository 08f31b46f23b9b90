#include "llm/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace sde::llm {

void validate(const SamplingOptions& o) {
  if (!(o.temperature >= 0.0f) || !std::isfinite(o.temperature)) {
    fail(StatusCode::kInvalidArgument, "temperature must be finite and >= 0, got ", o.temperature);
  }
  if (o.top_k < 0) fail(StatusCode::kInvalidArgument, "top_k must be >= 0 (0 disables it), got ", o.top_k);
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) {
    fail(StatusCode::kInvalidArgument, "top_p must be in (0, 1], got ", o.top_p);
  }
}

int32_t argmax(const float* logits, size_t count) {
  if (count == 0) fail(StatusCode::kInvalidArgument, "no logits to sample from");
  size_t best = 0;
  for (size_t i = 0; i < count; ++i) {
    if (std::isnan(logits[i])) fail(StatusCode::kInvalidArgument, "logit ", i, " is NaN");
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) { validate(options); }

double Sampler::uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int32_t Sampler::sample(const float* logits, size_t count) {
  const int32_t best = argmax(logits, count);  // also rejects NaN and empty input
  if (options_.temperature == 0.0f || options_.top_k == 1) return best;
  const double max_logit = logits[best];
  if (max_logit == -std::numeric_limits<double>::infinity()) {
    fail(StatusCode::kInvalidArgument, "every logit is -inf");
  }
  // Softmax of logits / T in double, relative to the maximum (so exp <= 1).
  const double inv_t = 1.0 / options_.temperature;
  candidates_.clear();
  candidates_.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const double w = std::exp((static_cast<double>(logits[i]) - max_logit) * inv_t);
    if (w > 0.0) candidates_.emplace_back(w, static_cast<int32_t>(i));
  }
  // Most likely first, lower id first among equals, so the kept set is well defined.
  auto more_likely = [](const std::pair<double, int32_t>& a, const std::pair<double, int32_t>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  size_t kept = candidates_.size();
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < kept) {
    kept = static_cast<size_t>(options_.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + kept, candidates_.end(), more_likely);
    candidates_.resize(kept);
  } else if (options_.top_p < 1.0f) {
    std::sort(candidates_.begin(), candidates_.end(), more_likely);
  }
  double total = 0.0;
  for (const auto& c : candidates_) total += c.first;
  if (options_.top_p < 1.0f) {
    // The smallest prefix whose probability reaches top_p (at least one token).
    const double target = static_cast<double>(options_.top_p) * total;
    double cumulative = 0.0;
    size_t n = 0;
    while (n < candidates_.size()) {
      cumulative += candidates_[n].first;
      ++n;
      if (cumulative >= target) break;
    }
    candidates_.resize(n);
    total = cumulative;
  }
  if (candidates_.size() == 1) return candidates_[0].second;
  const double u = uniform() * total;
  double cumulative = 0.0;
  for (const auto& c : candidates_) {
    cumulative += c.first;
    if (u < cumulative) return c.second;
  }
  return candidates_.back().second;  // u rounded up to the total
}

bool is_stop_token(int32_t id, const std::vector<int32_t>& stop_ids) {
  return std::find(stop_ids.begin(), stop_ids.end(), id) != stop_ids.end();
}

}  // namespace sde::llm
