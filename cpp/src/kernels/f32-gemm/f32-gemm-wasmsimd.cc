// f32-gemm, WebAssembly SIMD128: MR x 8 tiles (4x8 and 6x8; 6x8 keeps 12
// accumulators + 2 B vectors + 1 splat = 15 of the host's 16 xmm registers
// once V8 has compiled it). A is splatted per row, B rows are loaded as two
// v128. Columns left over after the 8-wide tiles go through 4-wide tiles and
// then 1..3-lane loads/stores (load32_zero/load64_zero, store*_lane), which
// never touch memory beyond the nc columns.
//
// SIMD128 has no fused multiply-add: each step is a mul then an add.
#include <wasm_simd128.h>

#include <cstddef>

#include "kernels/ukernels.h"

namespace sde {
namespace {

// Loads lanes [0, n) of p (1 <= n <= 4); other lanes are zero.
inline v128_t load_partial(const float* p, size_t n) {
  switch (n) {
    case 1: return wasm_v128_load32_zero(p);
    case 2: return wasm_v128_load64_zero(p);
    case 3: return wasm_v128_load32_lane(p + 2, wasm_v128_load64_zero(p), 2);
    default: return wasm_v128_load(p);
  }
}

inline void store_partial(float* p, v128_t v, size_t n) {
  switch (n) {
    case 1: wasm_v128_store32_lane(p, v, 0); break;
    case 2: wasm_v128_store64_lane(p, v, 0); break;
    case 3:
      wasm_v128_store64_lane(p, v, 0);
      wasm_v128_store32_lane(p + 2, v, 2);
      break;
    default: wasm_v128_store(p, v);
  }
}

// NV = 2: 8 columns; NV = 1: `nw` (1..4) columns.
template <size_t MR, size_t NV>
inline void tile(size_t mr, size_t nw, size_t kc, const float* a, const float* b, size_t ldb,
                 float* c, size_t ldc, const float* bias, int accumulate, v128_t vmin,
                 v128_t vmax) {
  v128_t acc[MR][NV];
  for (size_t r = 0; r < MR; ++r) {
    // Rows r >= mr compute on zeros (the panel is zero-padded) and are not stored.
    const size_t rr = r < mr ? r : 0;
    for (size_t v = 0; v < NV; ++v) {
      if (accumulate) {
        acc[r][v] = NV == 2 ? wasm_v128_load(c + rr * ldc + 4 * v) : load_partial(c + rr * ldc, nw);
      } else {
        acc[r][v] = wasm_f32x4_splat(bias ? bias[rr] : 0.0f);
      }
    }
  }
  for (size_t k = 0; k < kc; ++k) {
    v128_t bv[NV];
    if (NV == 2) {
      bv[0] = wasm_v128_load(b);
      bv[NV - 1] = wasm_v128_load(b + 4);
    } else {
      bv[0] = load_partial(b, nw);
    }
    for (size_t r = 0; r < MR; ++r) {
      const v128_t av = wasm_v128_load32_splat(a + r);
      for (size_t v = 0; v < NV; ++v) acc[r][v] = wasm_f32x4_add(acc[r][v], wasm_f32x4_mul(av, bv[v]));
    }
    a += MR;
    b += ldb;
  }
  for (size_t r = 0; r < MR; ++r) {
    if (r >= mr) break;
    for (size_t v = 0; v < NV; ++v) {
      const v128_t y = wasm_f32x4_pmin(wasm_f32x4_pmax(vmin, acc[r][v]), vmax);
      if (NV == 2) {
        wasm_v128_store(c + r * ldc + 4 * v, y);
      } else {
        store_partial(c + r * ldc, y, nw);
      }
    }
  }
}

template <size_t MR>
void gemm(size_t mr, size_t nc, size_t kc, const float* a_packed, const float* b, size_t ldb,
          float* c, size_t ldc, const float* bias, int accumulate, float min, float max) {
  const v128_t vmin = wasm_f32x4_splat(min), vmax = wasm_f32x4_splat(max);
  size_t n0 = 0;
  for (; n0 + 8 <= nc; n0 += 8) {
    tile<MR, 2>(mr, 8, kc, a_packed, b + n0, ldb, c + n0, ldc, bias, accumulate, vmin, vmax);
  }
  for (; n0 < nc; n0 += 4) {
    const size_t nw = nc - n0 < 4 ? nc - n0 : 4;
    tile<MR, 1>(mr, nw, kc, a_packed, b + n0, ldb, c + n0, ldc, bias, accumulate, vmin, vmax);
  }
}

}  // namespace

void sde_f32_gemm_ukernel_4x8__wasmsimd(size_t mr, size_t nc, size_t kc, const float* a_packed,
                                        const float* b, size_t ldb, float* c, size_t ldc,
                                        const float* bias, int accumulate, float min,
                                        float max) {
  gemm<4>(mr, nc, kc, a_packed, b, ldb, c, ldc, bias, accumulate, min, max);
}

void sde_f32_gemm_ukernel_6x8__wasmsimd(size_t mr, size_t nc, size_t kc, const float* a_packed,
                                        const float* b, size_t ldb, float* c, size_t ldc,
                                        const float* bias, int accumulate, float min,
                                        float max) {
  gemm<6>(mr, nc, kc, a_packed, b, ldb, c, ldc, bias, accumulate, min, max);
}

}  // namespace sde
