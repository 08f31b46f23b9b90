// WebAssembly SIMD128 f32-gemv over NR = 8 wide strips (the 6x8 and 4x8
// GEMMs' packing): two v128 per k step, four k steps in flight (8
// accumulators), x splatted per k. SIMD128 has no FMA: mul then add.
#include <wasm_simd128.h>

#include <algorithm>

#include "kernels/ukernels.h"

namespace sde {
namespace {

void gemv_8(size_t nc, size_t k, const float* x, const float* w, const float* bias, float* y,
            float min, float max) {
  constexpr size_t NR = 8;
  const v128_t vmin = wasm_f32x4_splat(min), vmax = wasm_f32x4_splat(max);
  for (size_t j0 = 0; j0 < nc; j0 += NR, w += k * NR) {
    const size_t cols = std::min(NR, nc - j0);
    v128_t a0 = wasm_f32x4_splat(0.0f), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
    const float* row = w;
    size_t kk = 0;
    for (; kk + 4 <= k; kk += 4, row += 4 * NR) {
      const v128_t x0 = wasm_v128_load32_splat(x + kk), x1 = wasm_v128_load32_splat(x + kk + 1);
      const v128_t x2 = wasm_v128_load32_splat(x + kk + 2), x3 = wasm_v128_load32_splat(x + kk + 3);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(x0, wasm_v128_load(row)));
      b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(x0, wasm_v128_load(row + 4)));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(x1, wasm_v128_load(row + 8)));
      b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(x1, wasm_v128_load(row + 12)));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(x2, wasm_v128_load(row + 16)));
      b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(x2, wasm_v128_load(row + 20)));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(x3, wasm_v128_load(row + 24)));
      b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(x3, wasm_v128_load(row + 28)));
    }
    for (; kk < k; ++kk, row += NR) {
      const v128_t x0 = wasm_v128_load32_splat(x + kk);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(x0, wasm_v128_load(row)));
      b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(x0, wasm_v128_load(row + 4)));
    }
    v128_t lo = wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3));
    v128_t hi = wasm_f32x4_add(wasm_f32x4_add(b0, b1), wasm_f32x4_add(b2, b3));
    alignas(16) float out[NR];
    wasm_v128_store(out, lo);
    wasm_v128_store(out + 4, hi);
    if (cols == NR) {
      if (bias != nullptr) {
        lo = wasm_f32x4_add(lo, wasm_v128_load(bias + j0));
        hi = wasm_f32x4_add(hi, wasm_v128_load(bias + j0 + 4));
      }
      wasm_v128_store(y + j0, wasm_f32x4_pmin(wasm_f32x4_pmax(vmin, lo), vmax));
      wasm_v128_store(y + j0 + 4, wasm_f32x4_pmin(wasm_f32x4_pmax(vmin, hi), vmax));
    } else {
      for (size_t j = 0; j < cols; ++j) {
        const float v = bias != nullptr ? out[j] + bias[j0 + j] : out[j];
        y[j0 + j] = std::min(std::max(v, min), max);
      }
    }
  }
}

}  // namespace

void sde_f32_gemv_ukernel_8__wasmsimd(size_t nc, size_t k, const float* x, const float* w,
                                      const float* bias, float* y, float min, float max) {
  gemv_8(nc, k, x, w, bias, y, min, max);
}

}  // namespace sde
