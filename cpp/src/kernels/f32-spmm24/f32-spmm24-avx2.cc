// AVX2+FMA f32-spmm24 over 8-row panels. Per group of 4 inputs the X quad is
// broadcast to both 128-bit halves, the panel's index word is broadcast and
// shifted by 4r (first kept value) or 4r + 2 (second) in lane r; vpermilps
// reads only the low two bits of each lane, so it selects each row's
// activation with no mask, and one FMA per kept value feeds 8 rows at once
// (no horizontal sums). m = 1 (decode) runs two panels in flight over two
// groups (software prefetch measured no gain over the hardware prefetcher on
// the two sequential streams per panel); m > 1 decodes a group's indices once
// and reuses them for up to 8 X rows, over L2-sized blocks of panels.
#include <immintrin.h>

#include <cstring>

#include "kernels/simd-avx2.h"
#include "kernels/ukernels.h"

namespace sde {
namespace {

constexpr size_t NR = 8;

inline __m256 select(__m256 xq, __m256i word, __m256i shifts) {
  return _mm256_permutevar_ps(xq, _mm256_srlv_epi32(word, shifts));
}

inline __m256 xquad(const float* x) { return _mm256_broadcast_ps(reinterpret_cast<const __m128*>(x)); }

inline void finish(__m256 acc, const float* bias, size_t rows, float* y) {
  if (bias != nullptr) {
    if (rows == NR) {
      acc = _mm256_add_ps(acc, _mm256_loadu_ps(bias));
    } else {
      alignas(32) float b[NR] = {0, 0, 0, 0, 0, 0, 0, 0};
      std::memcpy(b, bias, rows * sizeof(float));
      acc = _mm256_add_ps(acc, _mm256_load_ps(b));
    }
  }
  store_first_lanes(y, acc, rows);
}

// One X row against one or two panels (b may alias a when only one is left;
// its result is then dropped).
template <bool kTwo>
void gemv_panels(size_t groups, const float* x, const float* wa, const uint32_t* ia, const float* wb,
                 const uint32_t* ib, __m256& out_a, __m256& out_b) {
  const __m256i sh0 = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  const __m256i sh1 = _mm256_add_epi32(sh0, _mm256_set1_epi32(2));
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
  size_t g = 0;
  for (; g + 2 <= groups; g += 2) {
    const __m256 xq0 = xquad(x + 4 * g), xq1 = xquad(x + 4 * g + 4);
    const __m256i wa0 = _mm256_set1_epi32(static_cast<int>(ia[g]));
    const __m256i wa1 = _mm256_set1_epi32(static_cast<int>(ia[g + 1]));
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wa + 16 * g), select(xq0, wa0, sh0), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wa + 16 * g + 8), select(xq0, wa0, sh1), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(wa + 16 * g + 16), select(xq1, wa1, sh0), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(wa + 16 * g + 24), select(xq1, wa1, sh1), a3);
    if (kTwo) {
      const __m256i wb0 = _mm256_set1_epi32(static_cast<int>(ib[g]));
      const __m256i wb1 = _mm256_set1_epi32(static_cast<int>(ib[g + 1]));
      b0 = _mm256_fmadd_ps(_mm256_loadu_ps(wb + 16 * g), select(xq0, wb0, sh0), b0);
      b1 = _mm256_fmadd_ps(_mm256_loadu_ps(wb + 16 * g + 8), select(xq0, wb0, sh1), b1);
      b2 = _mm256_fmadd_ps(_mm256_loadu_ps(wb + 16 * g + 16), select(xq1, wb1, sh0), b2);
      b3 = _mm256_fmadd_ps(_mm256_loadu_ps(wb + 16 * g + 24), select(xq1, wb1, sh1), b3);
    }
  }
  if (g < groups) {
    const __m256 xq0 = xquad(x + 4 * g);
    const __m256i wa0 = _mm256_set1_epi32(static_cast<int>(ia[g]));
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(wa + 16 * g), select(xq0, wa0, sh0), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(wa + 16 * g + 8), select(xq0, wa0, sh1), a1);
    if (kTwo) {
      const __m256i wb0 = _mm256_set1_epi32(static_cast<int>(ib[g]));
      b0 = _mm256_fmadd_ps(_mm256_loadu_ps(wb + 16 * g), select(xq0, wb0, sh0), b0);
      b1 = _mm256_fmadd_ps(_mm256_loadu_ps(wb + 16 * g + 8), select(xq0, wb0, sh1), b1);
    }
  }
  out_a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  out_b = _mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3));
}

// MR X rows against one panel: the group's two index vectors and two value
// vectors are loaded once and used MR times.
template <size_t MR>
void tile(size_t groups, const float* x, size_t x_stride, const float* w, const uint32_t* widx,
          const float* bias, size_t rows, float* y, size_t y_stride) {
  const __m256i sh0 = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
  const __m256i sh1 = _mm256_add_epi32(sh0, _mm256_set1_epi32(2));
  __m256 acc[MR];
  for (size_t r = 0; r < MR; ++r) acc[r] = _mm256_setzero_ps();
  for (size_t g = 0; g < groups; ++g) {
    const __m256 v0 = _mm256_loadu_ps(w + 16 * g), v1 = _mm256_loadu_ps(w + 16 * g + 8);
    const __m256i word = _mm256_set1_epi32(static_cast<int>(widx[g]));
    const __m256i i0 = _mm256_srlv_epi32(word, sh0), i1 = _mm256_srlv_epi32(word, sh1);
    for (size_t r = 0; r < MR; ++r) {
      const __m256 xq = xquad(x + r * x_stride + 4 * g);
      acc[r] = _mm256_fmadd_ps(v0, _mm256_permutevar_ps(xq, i0), acc[r]);
      acc[r] = _mm256_fmadd_ps(v1, _mm256_permutevar_ps(xq, i1), acc[r]);
    }
  }
  for (size_t r = 0; r < MR; ++r) finish(acc[r], bias, rows, y + r * y_stride);
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

void sde_f32_spmm24_ukernel_8__avx2(size_t m, size_t nc, size_t k, const float* x, size_t x_stride,
                                    const float* w, const uint32_t* widx, const float* bias, float* y,
                                    size_t y_stride) {
  const size_t groups = k / 4, panel = groups * 2 * NR;
  if (m == 1) {
    size_t p0 = 0;
    for (; p0 + NR < nc; p0 += 2 * NR, w += 2 * panel, widx += 2 * groups) {
      __m256 a, b;
      gemv_panels<true>(groups, x, w, widx, w + panel, widx + groups, a, b);
      finish(a, bias != nullptr ? bias + p0 : nullptr, NR, y + p0);
      const size_t rows = nc - p0 - NR < NR ? nc - p0 - NR : NR;
      finish(b, bias != nullptr ? bias + p0 + NR : nullptr, rows, y + p0 + NR);
    }
    if (p0 < nc) {
      __m256 a, b;
      gemv_panels<false>(groups, x, w, widx, w, widx, a, b);
      finish(a, bias != nullptr ? bias + p0 : nullptr, nc - p0, y + p0);
    }
    return;
  }
  // Blocks of panels whose packed weights (~128 KB) stay in L2 while every
  // row tile of X passes over them.
  const size_t panel_bytes = groups * (2 * NR * sizeof(float) + sizeof(uint32_t));
  const size_t block = NR * (panel_bytes >= (128u << 10) ? 1 : (128u << 10) / panel_bytes);
  for (size_t o0 = 0; o0 < nc; o0 += block, w += (block / NR) * panel, widx += (block / NR) * groups) {
    const size_t cols = nc - o0 < block ? nc - o0 : block;
    const float* b = bias != nullptr ? bias + o0 : nullptr;
    size_t i = 0;
    for (; i + 8 <= m; i += 8) rows_tile<8>(cols, groups, x + i * x_stride, x_stride, w, widx, b, y + i * y_stride + o0, y_stride);
    const float* xr = x + i * x_stride;
    float* yr = y + i * y_stride + o0;
    switch (m - i) {
      case 7: rows_tile<7>(cols, groups, xr, x_stride, w, widx, b, yr, y_stride); break;
      case 6: rows_tile<6>(cols, groups, xr, x_stride, w, widx, b, yr, y_stride); break;
      case 5: rows_tile<5>(cols, groups, xr, x_stride, w, widx, b, yr, y_stride); break;
      case 4: rows_tile<4>(cols, groups, xr, x_stride, w, widx, b, yr, y_stride); break;
      case 3: rows_tile<3>(cols, groups, xr, x_stride, w, widx, b, yr, y_stride); break;
      case 2: rows_tile<2>(cols, groups, xr, x_stride, w, widx, b, yr, y_stride); break;
      case 1: rows_tile<1>(cols, groups, xr, x_stride, w, widx, b, yr, y_stride); break;
      default: break;
    }
  }
}

}  // namespace sde
