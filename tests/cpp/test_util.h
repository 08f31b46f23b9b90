// Minimal test helpers: CHECK macros, deterministic random data, tolerant
// comparison against a double-precision reference.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "kernels/kernels.h"

namespace sde_test {

inline int& failures() {
  static int n = 0;
  return n;
}

#define CHECK(cond)                                                             \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      if (++::sde_test::failures() > 20) std::exit(1);                          \
    }                                                                           \
  } while (0)

// Returns false (and reports `what`) if any element differs by more than
// rel_tol * max|ref| (ref computed in double). NaN anywhere fails.
inline bool near_all(const float* got, const double* ref, size_t n, const char* what,
                     double rel_tol = 1e-5) {
  double max_ref = 0.0;
  for (size_t i = 0; i < n; ++i) max_ref = std::fmax(max_ref, std::fabs(ref[i]));
  const double tol = rel_tol * std::fmax(max_ref, 1e-6);
  for (size_t i = 0; i < n; ++i) {
    if (!(std::fabs(double(got[i]) - ref[i]) <= tol)) {
      std::fprintf(stderr, "%s: mismatch at %zu: got %.9g want %.9g (tol %.3g)\n", what, i,
                   double(got[i]), ref[i], tol);
      if (++failures() > 20) std::exit(1);
      return false;
    }
  }
  return true;
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint32_t next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 7;
    s_ ^= s_ << 17;
    return static_cast<uint32_t>(s_ >> 11);
  }
  float uniform(float lo = -1.0f, float hi = 1.0f) {
    return lo + (hi - lo) * static_cast<float>(next() & 0xFFFFFF) / 16777216.0f;
  }
  std::vector<float> vec(size_t n, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(n);
    for (auto& x : v) x = uniform(lo, hi);
    return v;
  }

 private:
  uint64_t s_;
};

inline std::vector<sde::Isa> supported_isas() {
  std::vector<sde::Isa> out;
  const sde::Isa all[] = {sde::Isa::kScalar, sde::Isa::kSse2, sde::Isa::kAvx2,
                          sde::Isa::kAvx512f, sde::Isa::kNeon, sde::Isa::kWasmSimd};
  for (sde::Isa isa : all) {
    if (sde::isa_supported(isa)) out.push_back(isa);
  }
  return out;
}

inline double clampd(double v, float lo, float hi) {
  return std::fmin(std::fmax(v, double(lo)), double(hi));
}

}  // namespace sde_test
