// The f32-spmm24 family (2:4 semi-structured linear layers over the packed
// panels of sde_f32_spmm24_pack) against a naive reference on the stored
// layout: every kernel of f32-spmm24.inc that this CPU supports, and the one
// each ISA's dispatch table picks, over edge sizes: k = one group up to the
// SmolLM2 576/1536 layers, output counts below, at and off the panel width,
// M = 1 (decode GEMV), 2, 3, 7, 8, 9 and 64 (the row tiles and their
// remainders), strided X/Y, with and without bias, zero kept weights. Also:
// splitting the panels over several calls (as threads do) or moving rows to
// other row-tile positions gives bit-identical results, and nothing is written
// outside the nc columns of each row.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ukernels.h"
#include "operators/aligned_buffer.h"
#include "test_util.h"

using namespace sde;
using namespace sde_test;

namespace {

struct KernelCase {
  f32_spmm24_ukernel_fn fn;
  size_t nr;
  std::string name;
  Isa isa;
};

std::vector<KernelCase> kernel_list() {
  std::vector<KernelCase> v;
#define SDE_SPMM24_UKERNEL(fn_, nr_, isa_) v.push_back({fn_, nr_, #fn_, isa_});
#include "kernels/f32-spmm24/f32-spmm24.inc"
#undef SDE_SPMM24_UKERNEL
  for (Isa isa : supported_isas()) {
    const KernelTable t = kernels_for(isa);
    CHECK(t.spmm24.ukernel != nullptr);
    if (t.spmm24.ukernel != nullptr) {
      v.push_back({t.spmm24.ukernel, t.spmm24.nr, std::string("dispatch[") + isa_name(isa) + "] " + t.spmm24.name,
                   isa});
    }
  }
  return v;
}

// The six valid group bytes p0 | (p1 << 2), p0 < p1.
const uint8_t kPatterns[6] = {0 | 1 << 2, 0 | 2 << 2, 0 | 3 << 2, 1 | 2 << 2, 1 | 3 << 2, 2 | 3 << 2};

void test_shape(const KernelCase& kc, size_t m, size_t o, size_t k, bool with_bias, Rng& rng) {
  const size_t xs = k + (m % 2) * 3, ys = o + (m % 3 == 1 ? 0 : 5);  // strided rows sometimes
  std::vector<float> x = rng.vec(m * xs), values = rng.vec(o * k / 2), bias = rng.vec(o);
  std::vector<uint8_t> idx(o * k / 4);
  for (auto& b : idx) b = kPatterns[rng.next() % 6];
  for (size_t i = 0; i < values.size(); i += 7) values[i] = 0.0f;  // a kept weight may be zero
  std::vector<double> ref(m * o);
  for (size_t r = 0; r < m; ++r) {
    for (size_t oo = 0; oo < o; ++oo) {
      double acc = with_bias ? bias[oo] : 0.0;
      for (size_t g = 0; g < k / 4; ++g) {
        const uint8_t b = idx[oo * k / 4 + g];
        acc += double(values[oo * k / 2 + 2 * g]) * x[r * xs + 4 * g + (b & 3)];
        acc += double(values[oo * k / 2 + 2 * g + 1]) * x[r * xs + 4 * g + (b >> 2)];
      }
      ref[r * o + oo] = acc;
    }
  }
  AlignedFloats w(sde_f32_spmm24_packed_floats(kc.nr, o, k));
  std::vector<uint32_t> widx(sde_f32_spmm24_packed_words(kc.nr, o, k));
  sde_f32_spmm24_pack(kc.nr, o, k, values.data(), idx.data(), w.data(), widx.data());
  const float* b = with_bias ? bias.data() : nullptr;
  const float kCanary = 12345.0f;
  std::vector<float> y((m - 1) * ys + o + 1, kCanary);
  kc.fn(m, o, k, x.data(), xs, w.data(), widx.data(), b, y.data(), ys);
  std::vector<float> got(m * o);
  for (size_t r = 0; r < m; ++r) {
    std::memcpy(got.data() + r * o, y.data() + r * ys, o * sizeof(float));
    for (size_t j = o; j < ys && r + 1 < m; ++j) CHECK(y[r * ys + j] == kCanary);
  }
  CHECK(y.back() == kCanary);  // nothing written past the output
  const std::string what = kc.name + " m=" + std::to_string(m) + " o=" + std::to_string(o) +
                           " k=" + std::to_string(k) + (with_bias ? " bias" : "");
  near_all(got.data(), ref.data(), m * o, what.c_str(), 1e-5);
  // Rows shifted to other tile positions (a call on rows 1..m-1) give the same bits.
  if (m >= 3) {
    std::vector<float> y1(y.size(), kCanary);
    kc.fn(m - 1, o, k, x.data() + xs, xs, w.data(), widx.data(), b, y1.data(), ys);
    bool same = true;
    for (size_t r = 1; r < m; ++r) {
      same = same && std::memcmp(y1.data() + (r - 1) * ys, y.data() + r * ys, o * sizeof(float)) == 0;
    }
    if (!same) std::fprintf(stderr, "%s: rows in other tile positions differ\n", what.c_str());
    CHECK(same);
  }
  // Panels split over two calls (threads) give the same bits.
  const size_t panels = (o + kc.nr - 1) / kc.nr;
  if (panels >= 2) {
    const size_t split = panels / 2, o0 = split * kc.nr, g = k / 4;
    std::vector<float> y2(y.size(), kCanary);
    kc.fn(m, o0, k, x.data(), xs, w.data(), widx.data(), b, y2.data(), ys);
    kc.fn(m, o - o0, k, x.data(), xs, w.data() + split * g * 2 * kc.nr, widx.data() + split * g,
          b ? b + o0 : nullptr, y2.data() + o0, ys);
    bool same = true;
    for (size_t r = 0; r < m; ++r) {
      same = same && std::memcmp(y2.data() + r * ys, y.data() + r * ys, o * sizeof(float)) == 0;
    }
    if (!same) std::fprintf(stderr, "%s: split panels differ\n", what.c_str());
    CHECK(same);
  }
}

}  // namespace

int main() {
  Rng rng(24);
  for (const KernelCase& kc : kernel_list()) {
    if (!isa_supported(kc.isa)) continue;
    for (size_t k : {4, 8, 12, 16, 20, 32, 44, 576, 1536}) {
      for (size_t o : {1, 3, 4, 5, 8, 13, 16, 17, 67}) {
        for (size_t m : {1, 2, 3, 7}) test_shape(kc, m, o, k, (o + k + m) % 2 == 0, rng);
      }
    }
    for (size_t m : {8, 9, 13, 64}) {
      test_shape(kc, m, 13, 20, m % 2 == 0, rng);
      test_shape(kc, m, 67, 576, m % 2 == 1, rng);
    }
    test_shape(kc, 1, 576, 1536, true, rng);
    test_shape(kc, 1, 1536, 576, false, rng);
    test_shape(kc, 64, 192, 576, true, rng);
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
