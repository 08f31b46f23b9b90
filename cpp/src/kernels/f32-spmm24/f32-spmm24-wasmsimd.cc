// WebAssembly SIMD128 f32-spmm24 over 8-row panels (the same packing as
// AVX2). SIMD128 has no per-lane shift, so row r's kept position is moved to
// the top two bits by a per-lane multiply (by 2^(30 - 4r), or 2^(28 - 4r) for
// the second value) and shifted down by 30; 4p + {0,1,2,3} byte indices then
// let i8x16.swizzle pick each row's activation from the X quad. The four index
// vectors of a group are decoded once and reused for up to 4 rows of X; m = 1
// (decode) keeps eight accumulators over two groups.
#include <wasm_simd128.h>

#include <cstring>

#include "kernels/ukernels.h"

namespace sde {
namespace {

constexpr size_t NR = 8;

inline v128_t byte_index(v128_t word, v128_t mul) {
  const v128_t p = wasm_u32x4_shr(wasm_i32x4_mul(word, mul), 30);
  return wasm_i32x4_add(wasm_i32x4_mul(p, wasm_i32x4_splat(0x04040404)), wasm_i32x4_splat(0x03020100));
}

inline void store_rows(float* y, v128_t lo, v128_t hi, const float* bias, size_t rows) {
  alignas(16) float out[NR];
  wasm_v128_store(out, lo);
  wasm_v128_store(out + 4, hi);
  for (size_t r = 0; r < rows; ++r) y[r] = out[r] + (bias != nullptr ? bias[r] : 0.0f);
}

template <size_t MR>
void tile(size_t groups, const float* x, size_t x_stride, const float* w, const uint32_t* widx, const float* bias,
          size_t rows, float* y, size_t y_stride) {
  const v128_t m0lo = wasm_i32x4_make(1 << 30, 1 << 26, 1 << 22, 1 << 18);
  const v128_t m0hi = wasm_i32x4_make(1 << 14, 1 << 10, 1 << 6, 1 << 2);
  const v128_t m1lo = wasm_i32x4_make(1 << 28, 1 << 24, 1 << 20, 1 << 16);
  const v128_t m1hi = wasm_i32x4_make(1 << 12, 1 << 8, 1 << 4, 1);
  v128_t lo[MR], hi[MR];
  for (size_t r = 0; r < MR; ++r) lo[r] = hi[r] = wasm_f32x4_splat(0.0f);
  for (size_t g = 0; g < groups; ++g) {
    const float* v = w + 16 * g;
    const v128_t v0lo = wasm_v128_load(v), v0hi = wasm_v128_load(v + 4);
    const v128_t v1lo = wasm_v128_load(v + 8), v1hi = wasm_v128_load(v + 12);
    const v128_t word = wasm_i32x4_splat(static_cast<int32_t>(widx[g]));
    const v128_t i0lo = byte_index(word, m0lo), i0hi = byte_index(word, m0hi);
    const v128_t i1lo = byte_index(word, m1lo), i1hi = byte_index(word, m1hi);
    for (size_t r = 0; r < MR; ++r) {
      const v128_t xq = wasm_v128_load(x + r * x_stride + 4 * g);
      lo[r] = wasm_f32x4_add(lo[r], wasm_f32x4_mul(v0lo, wasm_i8x16_swizzle(xq, i0lo)));
      hi[r] = wasm_f32x4_add(hi[r], wasm_f32x4_mul(v0hi, wasm_i8x16_swizzle(xq, i0hi)));
      lo[r] = wasm_f32x4_add(lo[r], wasm_f32x4_mul(v1lo, wasm_i8x16_swizzle(xq, i1lo)));
      hi[r] = wasm_f32x4_add(hi[r], wasm_f32x4_mul(v1hi, wasm_i8x16_swizzle(xq, i1hi)));
    }
  }
  for (size_t r = 0; r < MR; ++r) store_rows(y + r * y_stride, lo[r], hi[r], bias, rows);
}

// One X row (decode) against one panel: eight independent accumulators (two
// groups in flight, first/second kept value, rows 0-3/4-7), summed at the end.
void gemv_panel(size_t groups, const float* x, const float* w, const uint32_t* widx, const float* bias, size_t rows,
                float* y) {
  const v128_t m0lo = wasm_i32x4_make(1 << 30, 1 << 26, 1 << 22, 1 << 18);
  const v128_t m0hi = wasm_i32x4_make(1 << 14, 1 << 10, 1 << 6, 1 << 2);
  const v128_t m1lo = wasm_i32x4_make(1 << 28, 1 << 24, 1 << 20, 1 << 16);
  const v128_t m1hi = wasm_i32x4_make(1 << 12, 1 << 8, 1 << 4, 1);
  v128_t acc[8];
  for (size_t j = 0; j < 8; ++j) acc[j] = wasm_f32x4_splat(0.0f);
  size_t g = 0;
  for (; g + 2 <= groups; g += 2) {
    for (size_t u = 0; u < 2; ++u) {
      const float* v = w + 16 * (g + u);
      const v128_t word = wasm_i32x4_splat(static_cast<int32_t>(widx[g + u]));
      const v128_t xq = wasm_v128_load(x + 4 * (g + u));
      acc[4 * u + 0] = wasm_f32x4_add(acc[4 * u + 0], wasm_f32x4_mul(wasm_v128_load(v), wasm_i8x16_swizzle(xq, byte_index(word, m0lo))));
      acc[4 * u + 1] = wasm_f32x4_add(acc[4 * u + 1], wasm_f32x4_mul(wasm_v128_load(v + 4), wasm_i8x16_swizzle(xq, byte_index(word, m0hi))));
      acc[4 * u + 2] = wasm_f32x4_add(acc[4 * u + 2], wasm_f32x4_mul(wasm_v128_load(v + 8), wasm_i8x16_swizzle(xq, byte_index(word, m1lo))));
      acc[4 * u + 3] = wasm_f32x4_add(acc[4 * u + 3], wasm_f32x4_mul(wasm_v128_load(v + 12), wasm_i8x16_swizzle(xq, byte_index(word, m1hi))));
    }
  }
  if (g < groups) {
    const float* v = w + 16 * g;
    const v128_t word = wasm_i32x4_splat(static_cast<int32_t>(widx[g]));
    const v128_t xq = wasm_v128_load(x + 4 * g);
    acc[0] = wasm_f32x4_add(acc[0], wasm_f32x4_mul(wasm_v128_load(v), wasm_i8x16_swizzle(xq, byte_index(word, m0lo))));
    acc[1] = wasm_f32x4_add(acc[1], wasm_f32x4_mul(wasm_v128_load(v + 4), wasm_i8x16_swizzle(xq, byte_index(word, m0hi))));
    acc[2] = wasm_f32x4_add(acc[2], wasm_f32x4_mul(wasm_v128_load(v + 8), wasm_i8x16_swizzle(xq, byte_index(word, m1lo))));
    acc[3] = wasm_f32x4_add(acc[3], wasm_f32x4_mul(wasm_v128_load(v + 12), wasm_i8x16_swizzle(xq, byte_index(word, m1hi))));
  }
  const v128_t lo = wasm_f32x4_add(wasm_f32x4_add(acc[0], acc[2]), wasm_f32x4_add(acc[4], acc[6]));
  const v128_t hi = wasm_f32x4_add(wasm_f32x4_add(acc[1], acc[3]), wasm_f32x4_add(acc[5], acc[7]));
  store_rows(y, lo, hi, bias, rows);
}

template <size_t MR>
void rows_tile(size_t nc, size_t groups, const float* x, size_t x_stride, const float* w, const uint32_t* widx,
               const float* bias, float* y, size_t y_stride) {
  for (size_t p0 = 0; p0 < nc; p0 += NR, w += groups * 2 * NR, widx += groups) {
    const size_t rows = nc - p0 < NR ? nc - p0 : NR;
    tile<MR>(groups, x, x_stride, w, widx, bias != nullptr ? bias + p0 : nullptr, rows, y + p0, y_stride);
  }
}

}  // namespace

void sde_f32_spmm24_ukernel_8__wasmsimd(size_t m, size_t nc, size_t k, const float* x, size_t x_stride,
                                        const float* w, const uint32_t* widx, const float* bias, float* y,
                                        size_t y_stride) {
  const size_t groups = k / 4;
  if (m == 1) {
    for (size_t p0 = 0; p0 < nc; p0 += NR, w += groups * 2 * NR, widx += groups) {
      gemv_panel(groups, x, w, widx, bias != nullptr ? bias + p0 : nullptr, nc - p0 < NR ? nc - p0 : NR, y + p0);
    }
    return;
  }
  size_t i = 0;
  for (; i + 4 <= m; i += 4) rows_tile<4>(nc, groups, x + i * x_stride, x_stride, w, widx, bias, y + i * y_stride, y_stride);
  const float* xr = x + i * x_stride;
  float* yr = y + i * y_stride;
  switch (m - i) {
    case 3: rows_tile<3>(nc, groups, xr, x_stride, w, widx, bias, yr, y_stride); break;
    case 2: rows_tile<2>(nc, groups, xr, x_stride, w, widx, bias, yr, y_stride); break;
    case 1: rows_tile<1>(nc, groups, xr, x_stride, w, widx, bias, yr, y_stride); break;
    default: break;
  }
}

}  // namespace sde
