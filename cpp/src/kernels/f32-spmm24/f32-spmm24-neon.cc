// NEON f32-spmm24 over 8-row panels (the same packing as AVX2). Per group the
// panel's index word is duplicated, shifted per lane (vshlq_u32 with signed
// counts) so row r's kept position p lands in bits 2-3 (4p), and turned into
// byte indices 4p + {0,1,2,3} (one multiply-add); vqtbl1q_u8 then picks each
// row's activation from the X quad. Four index vectors (rows 0-3/4-7, first/
// second kept value) per group are decoded once and reused for up to 8 rows
// of X; one FMA per 4 rows per kept value, no horizontal sums. m = 1 (decode)
// keeps eight accumulators over two groups to hide the FMA latency.
#include <arm_neon.h>

#include <cstring>

#include "kernels/simd-neon.h"
#include "kernels/ukernels.h"

namespace sde {
namespace {

constexpr size_t NR = 8;

inline float32x4_t pick(uint8x16_t xq, uint8x16_t idx) { return vreinterpretq_f32_u8(vqtbl1q_u8(xq, idx)); }

inline uint8x16_t byte_index(uint32x4_t word, int32x4_t shifts) {
  const uint32x4_t four_p = vandq_u32(vshlq_u32(word, shifts), vdupq_n_u32(0xC));
  return vreinterpretq_u8_u32(vmlaq_n_u32(vdupq_n_u32(0x03020100u), four_p, 0x01010101u));
}

inline void finish(float32x4_t lo, float32x4_t hi, const float* bias, size_t rows, float* y) {
  float b[NR] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (bias != nullptr) std::memcpy(b, bias, rows * sizeof(float));
  lo = vaddq_f32(lo, vld1q_f32(b));
  hi = vaddq_f32(hi, vld1q_f32(b + 4));
  if (rows >= 4) {
    vst1q_f32(y, lo);
    store_first(y + 4, hi, rows - 4);
  } else {
    store_first(y, lo, rows);
  }
}

// MR X rows against one panel.
template <size_t MR>
void tile(size_t groups, const float* x, size_t x_stride, const float* w, const uint32_t* widx, const float* bias,
          size_t rows, float* y, size_t y_stride) {
  // Row r's first position is at bit 4r, its second at 4r + 2; move each to bit 2.
  const int32_t s0lo[4] = {2, -2, -6, -10}, s0hi[4] = {-14, -18, -22, -26};
  const int32_t s1lo[4] = {0, -4, -8, -12}, s1hi[4] = {-16, -20, -24, -28};
  const int32x4_t sh0lo = vld1q_s32(s0lo), sh0hi = vld1q_s32(s0hi), sh1lo = vld1q_s32(s1lo), sh1hi = vld1q_s32(s1hi);
  float32x4_t lo[MR], hi[MR];
  SDE_NEON_UNROLL
  for (size_t r = 0; r < MR; ++r) {
    lo[r] = vdupq_n_f32(0.0f);
    hi[r] = vdupq_n_f32(0.0f);
  }
  for (size_t g = 0; g < groups; ++g) {
    const float* v = w + 16 * g;
    const float32x4_t v0lo = vld1q_f32(v), v0hi = vld1q_f32(v + 4), v1lo = vld1q_f32(v + 8), v1hi = vld1q_f32(v + 12);
    const uint32x4_t word = vdupq_n_u32(widx[g]);
    const uint8x16_t i0lo = byte_index(word, sh0lo), i0hi = byte_index(word, sh0hi);
    const uint8x16_t i1lo = byte_index(word, sh1lo), i1hi = byte_index(word, sh1hi);
    SDE_NEON_UNROLL
    for (size_t r = 0; r < MR; ++r) {
      const uint8x16_t xq = vreinterpretq_u8_f32(vld1q_f32(x + r * x_stride + 4 * g));
      lo[r] = vfmaq_f32(lo[r], v0lo, pick(xq, i0lo));
      hi[r] = vfmaq_f32(hi[r], v0hi, pick(xq, i0hi));
      lo[r] = vfmaq_f32(lo[r], v1lo, pick(xq, i1lo));
      hi[r] = vfmaq_f32(hi[r], v1hi, pick(xq, i1hi));
    }
  }
  SDE_NEON_UNROLL
  for (size_t r = 0; r < MR; ++r) finish(lo[r], hi[r], bias, rows, y + r * y_stride);
}

// One X row (decode) against one panel: eight independent accumulators (two
// groups in flight, first/second kept value, rows 0-3/4-7) so FMA latency is
// hidden; summed once at the end.
void gemv_panel(size_t groups, const float* x, const float* w, const uint32_t* widx, const float* bias, size_t rows,
                float* y) {
  const int32_t s0lo[4] = {2, -2, -6, -10}, s0hi[4] = {-14, -18, -22, -26};
  const int32_t s1lo[4] = {0, -4, -8, -12}, s1hi[4] = {-16, -20, -24, -28};
  const int32x4_t sh0lo = vld1q_s32(s0lo), sh0hi = vld1q_s32(s0hi), sh1lo = vld1q_s32(s1lo), sh1hi = vld1q_s32(s1hi);
  float32x4_t acc[8];
  SDE_NEON_UNROLL
  for (size_t j = 0; j < 8; ++j) acc[j] = vdupq_n_f32(0.0f);
  size_t g = 0;
  for (; g + 2 <= groups; g += 2) {
    SDE_NEON_UNROLL
    for (size_t u = 0; u < 2; ++u) {
      const float* v = w + 16 * (g + u);
      const uint32x4_t word = vdupq_n_u32(widx[g + u]);
      const uint8x16_t xq = vreinterpretq_u8_f32(vld1q_f32(x + 4 * (g + u)));
      acc[4 * u + 0] = vfmaq_f32(acc[4 * u + 0], vld1q_f32(v), pick(xq, byte_index(word, sh0lo)));
      acc[4 * u + 1] = vfmaq_f32(acc[4 * u + 1], vld1q_f32(v + 4), pick(xq, byte_index(word, sh0hi)));
      acc[4 * u + 2] = vfmaq_f32(acc[4 * u + 2], vld1q_f32(v + 8), pick(xq, byte_index(word, sh1lo)));
      acc[4 * u + 3] = vfmaq_f32(acc[4 * u + 3], vld1q_f32(v + 12), pick(xq, byte_index(word, sh1hi)));
    }
  }
  if (g < groups) {
    const float* v = w + 16 * g;
    const uint32x4_t word = vdupq_n_u32(widx[g]);
    const uint8x16_t xq = vreinterpretq_u8_f32(vld1q_f32(x + 4 * g));
    acc[0] = vfmaq_f32(acc[0], vld1q_f32(v), pick(xq, byte_index(word, sh0lo)));
    acc[1] = vfmaq_f32(acc[1], vld1q_f32(v + 4), pick(xq, byte_index(word, sh0hi)));
    acc[2] = vfmaq_f32(acc[2], vld1q_f32(v + 8), pick(xq, byte_index(word, sh1lo)));
    acc[3] = vfmaq_f32(acc[3], vld1q_f32(v + 12), pick(xq, byte_index(word, sh1hi)));
  }
  const float32x4_t lo = vaddq_f32(vaddq_f32(acc[0], acc[2]), vaddq_f32(acc[4], acc[6]));
  const float32x4_t hi = vaddq_f32(vaddq_f32(acc[1], acc[3]), vaddq_f32(acc[5], acc[7]));
  finish(lo, hi, bias, rows, y);
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

void sde_f32_spmm24_ukernel_8__neon(size_t m, size_t nc, size_t k, const float* x, size_t x_stride,
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
  for (; i + 8 <= m; i += 8) rows_tile<8>(nc, groups, x + i * x_stride, x_stride, w, widx, bias, y + i * y_stride, y_stride);
  const float* xr = x + i * x_stride;
  float* yr = y + i * y_stride;
  switch (m - i) {
    case 7: rows_tile<7>(nc, groups, xr, x_stride, w, widx, bias, yr, y_stride); break;
    case 6: rows_tile<6>(nc, groups, xr, x_stride, w, widx, bias, yr, y_stride); break;
    case 5: rows_tile<5>(nc, groups, xr, x_stride, w, widx, bias, yr, y_stride); break;
    case 4: rows_tile<4>(nc, groups, xr, x_stride, w, widx, bias, yr, y_stride); break;
    case 3: rows_tile<3>(nc, groups, xr, x_stride, w, widx, bias, yr, y_stride); break;
    case 2: rows_tile<2>(nc, groups, xr, x_stride, w, widx, bias, yr, y_stride); break;
    case 1: rows_tile<1>(nc, groups, xr, x_stride, w, widx, bias, yr, y_stride); break;
    default: break;
  }
}

}  // namespace sde
