// The f32-spmv24 family (2:4 semi-structured GEMV) against a naive reference:
// every kernel of f32-spmv24.inc that this CPU supports, and the one each
// ISA's dispatch table picks, over edge sizes (one group, groups below, at and
// above the 16-input AVX2 step, the SmolLM2 576/1536 layers), output counts
// below, at and off the 4-row tile, M = 1 and M = 3 (rows looped as the
// SemiStructuredMatMul op does), with and without bias, zero kept weights.
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ukernels.h"
#include "test_util.h"

using namespace sde;
using namespace sde_test;

namespace {

struct KernelCase {
  f32_spmv24_ukernel_fn fn;
  std::string name;
  Isa isa;
};

std::vector<KernelCase> kernel_list() {
  std::vector<KernelCase> v;
#define SDE_SPMV24_UKERNEL(fn_, rows_, isa_) v.push_back({fn_, #fn_, isa_});
#include "kernels/f32-spmv24/f32-spmv24.inc"
#undef SDE_SPMV24_UKERNEL
  for (Isa isa : supported_isas()) {
    const KernelTable t = kernels_for(isa);
    CHECK(t.spmv24.ukernel != nullptr);
    if (t.spmv24.ukernel != nullptr) {
      v.push_back({t.spmv24.ukernel, std::string("dispatch[") + isa_name(isa) + "] " + t.spmv24.name, isa});
    }
  }
  return v;
}

// The six valid group bytes p0 | (p1 << 2), p0 < p1.
const uint8_t kPatterns[6] = {0 | 1 << 2, 0 | 2 << 2, 0 | 3 << 2, 1 | 2 << 2, 1 | 3 << 2, 2 | 3 << 2};

void test_shape(const KernelCase& kc, size_t m, size_t o, size_t k, bool with_bias, Rng& rng) {
  std::vector<float> x = rng.vec(m * k), values = rng.vec(o * k / 2), bias = rng.vec(o);
  std::vector<uint8_t> idx(o * k / 4);
  for (auto& b : idx) b = kPatterns[rng.next() % 6];
  for (size_t i = 0; i < values.size(); i += 7) values[i] = 0.0f;  // a kept weight may be zero
  std::vector<double> ref(m * o);
  for (size_t r = 0; r < m; ++r) {
    for (size_t oo = 0; oo < o; ++oo) {
      double acc = with_bias ? bias[oo] : 0.0;
      for (size_t g = 0; g < k / 4; ++g) {
        const uint8_t b = idx[oo * k / 4 + g];
        acc += double(values[oo * k / 2 + 2 * g]) * x[r * k + 4 * g + (b & 3)];
        acc += double(values[oo * k / 2 + 2 * g + 1]) * x[r * k + 4 * g + (b >> 2)];
      }
      ref[r * o + oo] = acc;
    }
  }
  std::vector<float> y(m * o + 1, 12345.0f);
  for (size_t r = 0; r < m; ++r) {
    kc.fn(o, k, x.data() + r * k, values.data(), idx.data(), with_bias ? bias.data() : nullptr,
          y.data() + r * o);
  }
  const std::string what = kc.name + " m=" + std::to_string(m) + " o=" + std::to_string(o) +
                           " k=" + std::to_string(k) + (with_bias ? " bias" : "");
  near_all(y.data(), ref.data(), m * o, what.c_str(), 1e-5);
  CHECK(y[m * o] == 12345.0f);  // nothing written past the output
}

}  // namespace

int main() {
  Rng rng(24);
  for (const KernelCase& kc : kernel_list()) {
    if (!isa_supported(kc.isa)) continue;
    for (size_t k : {4, 8, 12, 16, 20, 32, 44, 576, 1536}) {
      for (size_t o : {1, 3, 4, 5, 8, 13, 67}) {
        for (size_t m : {1, 3}) test_shape(kc, m, o, k, (o + k) % 2 == 0, rng);
      }
    }
    test_shape(kc, 1, 576, 1536, true, rng);
    test_shape(kc, 3, 1536, 576, true, rng);
    std::printf("%s: ok\n", kc.name.c_str());
  }
  if (failures() != 0) {
    std::fprintf(stderr, "%d failure(s)\n", failures());
    return 1;
  }
  std::printf("test_spmv24: all passed\n");
  return 0;
}
