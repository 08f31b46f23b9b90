// Every microkernel in every `.inc` list, for every ISA this CPU supports,
// against a direct double-precision reference over edge shapes.
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/ukernels.h"
#include "test_util.h"

using namespace sde;
using namespace sde_test;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kSentinel = 12345.0f;

// C[mr x nc] = clamp(bias + A*B) or clamp(C + A*B); B and C have padded rows
// whose padding holds NaN (B) or a sentinel (C) to catch out-of-bounds use.
void test_gemm_case(f32_gemm_ukernel_fn fn, const char* name, size_t MR, size_t mr, size_t nc,
                    size_t kc, bool accumulate, bool with_bias, float lo, float hi, Rng& rng) {
  const size_t ldb = nc + 3, ldc = nc + 5;
  std::vector<float> a = rng.vec(mr * kc);
  std::vector<float> a_packed(MR * kc, 0.0f);
  for (size_t k = 0; k < kc; ++k)
    for (size_t r = 0; r < mr; ++r) a_packed[k * MR + r] = a[r * kc + k];
  std::vector<float> b(kc * ldb, kNaN);
  for (size_t k = 0; k < kc; ++k)
    for (size_t j = 0; j < nc; ++j) b[k * ldb + j] = rng.uniform();
  std::vector<float> bias = rng.vec(mr);
  // One extra row beyond mr to catch stray writes.
  std::vector<float> c((mr + 1) * ldc, kSentinel);
  std::vector<float> c_init = rng.vec(mr * nc);
  if (accumulate)
    for (size_t r = 0; r < mr; ++r)
      for (size_t j = 0; j < nc; ++j) c[r * ldc + j] = c_init[r * nc + j];
  std::vector<double> ref(mr * nc);
  for (size_t r = 0; r < mr; ++r)
    for (size_t j = 0; j < nc; ++j) {
      double acc = accumulate ? c_init[r * nc + j] : (with_bias ? bias[r] : 0.0);
      for (size_t k = 0; k < kc; ++k) acc += double(a[r * kc + k]) * double(b[k * ldb + j]);
      ref[r * nc + j] = clampd(acc, lo, hi);
    }
  fn(mr, nc, kc, a_packed.data(), b.data(), ldb, c.data(), ldc,
     with_bias ? bias.data() : nullptr, accumulate ? 1 : 0, lo, hi);
  std::vector<float> got(mr * nc);
  bool guards_ok = true;
  for (size_t r = 0; r <= mr; ++r)
    for (size_t j = 0; j < ldc; ++j) {
      const float v = c[r * ldc + j];
      if (r < mr && j < nc) {
        got[r * nc + j] = v;
      } else if (v != kSentinel) {
        guards_ok = false;
      }
    }
  char what[256];
  std::snprintf(what, sizeof what, "%s mr=%zu nc=%zu kc=%zu acc=%d bias=%d clamp=[%g,%g]", name,
                mr, nc, kc, int(accumulate), int(with_bias), lo, hi);
  if (!guards_ok) std::fprintf(stderr, "%s: wrote outside C\n", what);
  CHECK(guards_ok);
  near_all(got.data(), ref.data(), got.size(), what);
}

void test_gemm_kernel(f32_gemm_ukernel_fn fn, const char* name, size_t MR, size_t NR) {
  Rng rng(1);
  const float inf = INFINITY;
  std::vector<size_t> ncs;
  for (size_t n = 1; n <= NR + 1; ++n) ncs.push_back(n);
  ncs.push_back(2 * NR - 1);
  ncs.push_back(2 * NR);
  ncs.push_back(3 * NR + 5);
  for (size_t mr = 1; mr <= MR; ++mr)
    for (size_t nc : ncs)
      for (size_t kc : {1, 2, 3, 8, 37})
        for (int mode = 0; mode < 4; ++mode) {
          const bool accumulate = mode & 1, with_bias = mode & 2;
          test_gemm_case(fn, name, MR, mr, nc, kc, accumulate, with_bias, -inf, inf, rng);
        }
  for (size_t mr : {size_t(1), MR})
    for (size_t nc : {size_t(1), NR, NR + 3})
      test_gemm_case(fn, name, MR, mr, nc, 16, false, true, -0.5f, 0.7f, rng);
}

// y[nc] = clamp(bias + x * W) over weights packed in NR-wide strips (as
// pack_b_strips writes them, padding columns zero); y has guard floats after nc.
void test_gemv_kernel(f32_gemv_ukernel_fn fn, const char* name, size_t NR) {
  Rng rng(3);
  const float inf = INFINITY;
  std::vector<size_t> ncs;
  for (size_t n = 1; n <= NR + 1; ++n) ncs.push_back(n);
  for (size_t n : {2 * NR - 1, 2 * NR, 3 * NR + 5}) ncs.push_back(n);
  // k = 1..20 covers every remainder of the kernels' k unrolling; 576 and
  // 1536 are the SmolLM2-135M hidden and MLP widths.
  std::vector<size_t> ks;
  for (size_t k = 1; k <= 20; ++k) ks.push_back(k);
  for (size_t k : {37, 576, 1536}) ks.push_back(k);
  for (size_t nc : ncs)
    for (size_t k : ks)
      for (int mode = 0; mode < 3; ++mode) {
        const bool with_bias = mode >= 1, clamp = mode == 2;
        const float lo = clamp ? -0.5f : -inf, hi = clamp ? 0.7f : inf;
        const size_t strips = (nc + NR - 1) / NR;
        std::vector<float> w_rows = rng.vec(k * nc);  // [k, nc]
        std::vector<float> packed(strips * NR * k, 0.0f);
        for (size_t s = 0; s < strips; ++s)
          for (size_t kk = 0; kk < k; ++kk)
            for (size_t j = 0; j < NR && s * NR + j < nc; ++j) packed[(s * k + kk) * NR + j] = w_rows[kk * nc + s * NR + j];
        std::vector<float> x = rng.vec(k), bias = rng.vec(nc);
        std::vector<float> y(nc + 7, kSentinel);
        fn(nc, k, x.data(), packed.data(), with_bias ? bias.data() : nullptr, y.data(), lo, hi);
        std::vector<double> ref(nc);
        double raw_max = 0.0, ref_max = 0.0;  // rounding scales with the unclamped sums
        for (size_t j = 0; j < nc; ++j) {
          double acc = with_bias ? bias[j] : 0.0;
          for (size_t kk = 0; kk < k; ++kk) acc += double(x[kk]) * double(w_rows[kk * nc + j]);
          ref[j] = clampd(acc, lo, hi);
          raw_max = std::fmax(raw_max, std::fabs(acc));
          ref_max = std::fmax(ref_max, std::fabs(ref[j]));
        }
        bool guards_ok = true;
        for (size_t j = nc; j < y.size(); ++j) guards_ok = guards_ok && y[j] == kSentinel;
        char what[256];
        std::snprintf(what, sizeof what, "%s nc=%zu k=%zu bias=%d clamp=%d", name, nc, k, int(with_bias), int(clamp));
        if (!guards_ok) std::fprintf(stderr, "%s: wrote outside y\n", what);
        CHECK(guards_ok);
        near_all(y.data(), ref.data(), nc, what, 1e-5 * std::fmax(1.0, raw_max / std::fmax(ref_max, 1e-6)));
      }
}

void test_dwconv_kernel(f32_dwconv2d_chw_fn fn, const char* name, size_t K, size_t S) {
  Rng rng(2);
  const float inf = INFINITY;
  std::vector<size_t> widths;
  for (size_t w = 1; w <= 18; ++w) widths.push_back(w);
  widths.push_back(31);
  widths.push_back(33);
  for (size_t oh : {1, 2, 3, 6})
    for (size_t ow : widths)
      for (int clamp = 0; clamp < 2; ++clamp) {
        const size_t rows = (oh - 1) * S + K, cols = (ow - 1) * S + K;
        const size_t in_stride = cols + 32 + (ow % 3);
        std::vector<float> in(rows * in_stride, kNaN);  // slack: unspecified values
        for (size_t y = 0; y < rows; ++y)
          for (size_t x = 0; x < cols; ++x) in[y * in_stride + x] = rng.uniform();
        std::vector<float> w = rng.vec(K * K);
        const float bias = rng.uniform();
        const float lo = clamp ? -0.3f : -inf, hi = clamp ? 0.4f : inf;
        const size_t out_stride = ow + 2;
        std::vector<float> out((oh + 1) * out_stride, kSentinel);
        fn(oh, ow, in.data(), in_stride, w.data(), bias, out.data(), out_stride, lo, hi);
        std::vector<double> ref(oh * ow);
        std::vector<float> got(oh * ow);
        bool guards_ok = true;
        for (size_t oy = 0; oy < oh; ++oy)
          for (size_t ox = 0; ox < ow; ++ox) {
            double acc = bias;
            for (size_t ky = 0; ky < K; ++ky)
              for (size_t kx = 0; kx < K; ++kx)
                acc += double(w[ky * K + kx]) * double(in[(oy * S + ky) * in_stride + ox * S + kx]);
            ref[oy * ow + ox] = clampd(acc, lo, hi);
            got[oy * ow + ox] = out[oy * out_stride + ox];
          }
        for (size_t i = 0; i < out.size(); ++i) {
          const size_t oy = i / out_stride, ox = i % out_stride;
          if ((oy >= oh || ox >= ow) && out[i] != kSentinel) guards_ok = false;
        }
        char what[256];
        std::snprintf(what, sizeof what, "%s oh=%zu ow=%zu clamp=%d", name, oh, ow, clamp);
        if (!guards_ok) std::fprintf(stderr, "%s: wrote outside the output\n", what);
        CHECK(guards_ok);
        near_all(got.data(), ref.data(), got.size(), what);
      }
}

}  // namespace

int main() {
  int tested = 0, skipped = 0;
#define SDE_GEMM_UKERNEL(fn, mr, nr, isa)          \
  if (isa_supported(isa)) {                        \
    test_gemm_kernel(fn, #fn, mr, nr);             \
    ++tested;                                      \
  } else {                                         \
    std::printf("skip %s (ISA not supported)\n", #fn); \
    ++skipped;                                     \
  }
#include "kernels/f32-gemm/f32-gemm.inc"
#undef SDE_GEMM_UKERNEL
#define SDE_GEMV_UKERNEL(fn, nr, isa)              \
  if (isa_supported(isa)) {                        \
    test_gemv_kernel(fn, #fn, nr);                 \
    ++tested;                                      \
  } else {                                         \
    std::printf("skip %s (ISA not supported)\n", #fn); \
    ++skipped;                                     \
  }
#include "kernels/f32-gemv/f32-gemv.inc"
#undef SDE_GEMV_UKERNEL
#define SDE_DWCONV_UKERNEL(fn, k, s, isa)          \
  if (isa_supported(isa)) {                        \
    test_dwconv_kernel(fn, #fn, k, s);             \
    ++tested;                                      \
  } else {                                         \
    std::printf("skip %s (ISA not supported)\n", #fn); \
    ++skipped;                                     \
  }
#include "kernels/f32-dwconv2d-chw/f32-dwconv2d-chw.inc"
#undef SDE_DWCONV_UKERNEL

  // Dispatch sanity: the start-up table is complete and names a supported ISA.
  const KernelTable& kt = kernels();
  CHECK(isa_supported(kt.isa));
  CHECK(kt.gemm.ukernel != nullptr && kt.gemm.mr > 0 && kt.gemm.nr > 0);
  CHECK(kt.dwconv.k3s1 && kt.dwconv.k3s2 && kt.dwconv.k5s1 && kt.dwconv.k5s2);
  for (Isa isa : supported_isas()) {
    const KernelTable t = kernels_for(isa);
    CHECK(t.gemm.ukernel != nullptr);
    CHECK(t.dwconv.k3s1 != nullptr);
    CHECK(t.gemv.ukernel == nullptr || t.gemv.nr == t.gemm.nr);
  }
  std::printf("test_kernels: %d kernels tested, %d skipped, dispatch=%s (%s), %d failures\n",
              tested, skipped, isa_name(kt.isa), kt.gemm.name, failures());
  return failures() == 0 ? 0 : 1;
}
