// f32-gspmv, WebAssembly SIMD128 variants: B = 1, 2, 4, 8.
//
// B = 8, 4: the B weights of a nonzero are 2 or 1 v128, times x[col]
// splatted; B = 2: two consecutive nonzeros per v128 (x values joined by a
// shuffle); B = 1: four per v128, x loaded lane by lane. Partial sums over
// nonzeros in flight are added at the end of the row (a fixed pattern).
// SIMD128 has no FMA: mul then add.
#include <wasm_simd128.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/ukernels.h"

namespace sde {
namespace {

inline v128_t madd(v128_t acc, const float* w, v128_t x) {
  return wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(w), x));
}
inline v128_t splat(const float* x, uint16_t c) { return wasm_v128_load32_splat(x + c); }
inline v128_t clamp(v128_t v, float lo, float hi) {
  return wasm_f32x4_pmin(wasm_f32x4_pmax(wasm_f32x4_splat(lo), v), wasm_f32x4_splat(hi));
}

void gspmv8(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    v128_t a0 = wasm_v128_load(w), a1 = wasm_v128_load(w + 4);
    v128_t b0 = wasm_f32x4_splat(0.0f), b1 = b0;
    w += 8;
    uint32_t n = nnz[r];
    for (; n >= 2; n -= 2) {
      const v128_t x0 = splat(x, col[0]), x1 = splat(x, col[1]);
      a0 = madd(a0, w, x0);
      a1 = madd(a1, w + 4, x0);
      b0 = madd(b0, w + 8, x1);
      b1 = madd(b1, w + 12, x1);
      w += 16;
      col += 2;
    }
    if (n) {
      const v128_t x0 = splat(x, col[0]);
      a0 = madd(a0, w, x0);
      a1 = madd(a1, w + 4, x0);
      w += 8;
      col += 1;
    }
    wasm_v128_store(y + r * 8, clamp(wasm_f32x4_add(a0, b0), min, max));
    wasm_v128_store(y + r * 8 + 4, clamp(wasm_f32x4_add(a1, b1), min, max));
  }
}

void gspmv4(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    v128_t a0 = wasm_v128_load(w), a1 = wasm_f32x4_splat(0.0f), a2 = a1, a3 = a1;
    w += 4;
    uint32_t n = nnz[r];
    for (; n >= 4; n -= 4) {
      a0 = madd(a0, w, splat(x, col[0]));
      a1 = madd(a1, w + 4, splat(x, col[1]));
      a2 = madd(a2, w + 8, splat(x, col[2]));
      a3 = madd(a3, w + 12, splat(x, col[3]));
      w += 16;
      col += 4;
    }
    if (n & 2) {
      a0 = madd(a0, w, splat(x, col[0]));
      a1 = madd(a1, w + 4, splat(x, col[1]));
      w += 8;
      col += 2;
    }
    if (n & 1) {
      a2 = madd(a2, w, splat(x, col[0]));
      w += 4;
      col += 1;
    }
    const v128_t s = wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3));
    wasm_v128_store(y + r * 4, clamp(s, min, max));
  }
}

// x[col[0]] in lanes 0-1, x[col[1]] in lanes 2-3.
inline v128_t pair(const float* x, const uint16_t* col) {
  return wasm_i32x4_shuffle(splat(x, col[0]), splat(x, col[1]), 0, 1, 4, 5);
}

void gspmv2(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    float s0 = w[0], s1 = w[1];  // bias, then an odd last nonzero
    w += 2;
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0;
    uint32_t n = nnz[r];
    for (; n >= 4; n -= 4) {
      a0 = madd(a0, w, pair(x, col));
      a1 = madd(a1, w + 4, pair(x, col + 2));
      w += 8;
      col += 4;
    }
    if (n & 2) {
      a0 = madd(a0, w, pair(x, col));
      w += 4;
      col += 2;
    }
    if (n & 1) {
      const float xv = x[*col++];
      s0 += w[0] * xv;
      s1 += w[1] * xv;
      w += 2;
    }
    const v128_t s = wasm_f32x4_add(a0, a1);
    const float t0 = wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 2) + s0;
    const float t1 = wasm_f32x4_extract_lane(s, 1) + wasm_f32x4_extract_lane(s, 3) + s1;
    y[r * 2] = std::min(std::max(t0, min), max);
    y[r * 2 + 1] = std::min(std::max(t1, min), max);
  }
}

// x[col[0..3]] in lanes 0..3.
inline v128_t gather4(const float* x, const uint16_t* col) {
  v128_t v = wasm_v128_load32_zero(x + col[0]);
  v = wasm_v128_load32_lane(x + col[1], v, 1);
  v = wasm_v128_load32_lane(x + col[2], v, 2);
  return wasm_v128_load32_lane(x + col[3], v, 3);
}

void gspmv1(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    float s = *w++;  // bias, then the last n % 4 nonzeros
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0;
    uint32_t n = nnz[r];
    for (; n >= 8; n -= 8) {
      a0 = madd(a0, w, gather4(x, col));
      a1 = madd(a1, w + 4, gather4(x, col + 4));
      w += 8;
      col += 8;
    }
    if (n & 4) {
      a0 = madd(a0, w, gather4(x, col));
      w += 4;
      col += 4;
    }
    for (n &= 3; n != 0; --n) s += *w++ * x[*col++];
    const v128_t v = wasm_f32x4_add(a0, a1);
    const float t = (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
                    (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3)) + s;
    y[r] = std::min(std::max(t, min), max);
  }
}

}  // namespace

void sde_f32_gspmv_ukernel_1__wasmsimd(size_t block_rows, const float* x, const float* w,
                                       const uint16_t* col, const uint32_t* nnz, float* y,
                                       float min, float max) {
  gspmv1(block_rows, x, w, col, nnz, y, min, max);
}
void sde_f32_gspmv_ukernel_2__wasmsimd(size_t block_rows, const float* x, const float* w,
                                       const uint16_t* col, const uint32_t* nnz, float* y,
                                       float min, float max) {
  gspmv2(block_rows, x, w, col, nnz, y, min, max);
}
void sde_f32_gspmv_ukernel_4__wasmsimd(size_t block_rows, const float* x, const float* w,
                                       const uint16_t* col, const uint32_t* nnz, float* y,
                                       float min, float max) {
  gspmv4(block_rows, x, w, col, nnz, y, min, max);
}
void sde_f32_gspmv_ukernel_8__wasmsimd(size_t block_rows, const float* x, const float* w,
                                       const uint16_t* col, const uint32_t* nnz, float* y,
                                       float min, float max) {
  gspmv8(block_rows, x, w, col, nnz, y, min, max);
}

}  // namespace sde
