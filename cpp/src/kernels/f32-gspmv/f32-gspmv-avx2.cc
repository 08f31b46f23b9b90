// f32-gspmv, AVX2+FMA variants: B = 1, 2, 4, 8.
//
// One ymm holds the weights of 8 / B consecutive nonzeros of a block row (they
// are contiguous in the stream), multiplied by the matching x values spread
// over the B lanes of each nonzero:
//   B = 8: one broadcast;   B = 4: two broadcasts joined (vinsertf128);
//   B = 2: four x values gathered (vgatherdps xmm), spread by vpermps;
//   B = 1: eight x values gathered (vgatherdps ymm).
// Four (B = 4), two (B = 1, 2; B = 8 with two block rows jointly) ymm partial
// sums per block row keep FMAs in flight; nonzeros left over go to fixed
// sums, so a row's result depends only on the row. At the end the partial
// sums and the lanes holding the same channel are added (B = 1, 2, 4 add the
// bias last, B = 8 starts from it).
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/ukernels.h"

namespace sde {
namespace {

// The weight stream 1 KB ahead, `lines` 64-byte lines (the floats one loop
// iteration consumes): software prefetch brought the cold (DRAM) stream from
// 0.65x to 0.57x of the dense GEMV's time at 50% of 4x1 blocks, about the
// ratio of bytes streamed (the hardware prefetcher alone kept fewer lines in
// flight). Prefetches past the end of the stream are harmless.
inline void prefetch(const float* w, int lines) {
  for (int i = 0; i < lines; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(w + 256 + 16 * i), _MM_HINT_T0);
  }
}

inline __m256 clamp(__m256 v, float lo, float hi) {
  return _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(lo)), _mm256_set1_ps(hi));
}
inline __m128 clamp(__m128 v, float lo, float hi) {
  return _mm_min_ps(_mm_max_ps(v, _mm_set1_ps(lo)), _mm_set1_ps(hi));
}

// B = 8. Nonzero j of a row goes to partial sum j mod 2 (s0 starts at the
// bias); two block rows run jointly over their common even nonzero count, so
// two weight streams are in flight (on down 576x1536 from DRAM a single
// stream per row ran at 0.58x of dense vs 0.45x for gspmm's 4 rows), then
// each row finishes alone with the same pattern.
struct Row8 {
  const float* w;
  const uint16_t* col;
  uint32_t n;
  __m256 s0, s1;
  void init(const float* w_, const uint16_t* col_, uint32_t n_) {
    w = w_ + 8;
    col = col_;
    n = n_;
    s0 = _mm256_loadu_ps(w_);
    s1 = _mm256_setzero_ps();
  }
  void pair(const float* x) {  // nonzeros j (even) and j + 1
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), _mm256_broadcast_ss(x + col[0]), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), _mm256_broadcast_ss(x + col[1]), s1);
    w += 16;
    col += 2;
  }
  void finish(const float* x, uint32_t done, float* y, float min, float max) {
    uint32_t left = n - done;
    for (; left >= 2; left -= 2) {
      prefetch(w, 1);
      pair(x);
    }
    if (left) {
      s0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), _mm256_broadcast_ss(x + col[0]), s0);
      w += 8;
      col += 1;
    }
    _mm256_storeu_ps(y, clamp(_mm256_add_ps(s0, s1), min, max));
  }
};

void gspmv8(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  size_t r = 0;
  for (; r + 2 <= block_rows; r += 2) {
    Row8 a, b;
    a.init(w, col, nnz[r]);
    b.init(w + 8 * (1 + nnz[r]), col + nnz[r], nnz[r + 1]);
    const uint32_t common = std::min(a.n, b.n) & ~1u;
    for (uint32_t j = 0; j < common; j += 2) {
      prefetch(a.w, 1);
      prefetch(b.w, 1);
      a.pair(x);
      b.pair(x);
    }
    a.finish(x, common, y + r * 8, min, max);
    b.finish(x, common, y + r * 8 + 8, min, max);
    w = b.w;
    col = b.col;
  }
  if (r < block_rows) {
    Row8 a;
    a.init(w, col, nnz[r]);
    a.finish(x, 0, y + r * 8, min, max);
  }
}

// x[c0] in lanes 0-3, x[c1] in lanes 4-7.
inline __m256 pair(const float* x, uint16_t c0, uint16_t c1) {
  return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_broadcast_ss(x + c0)),
                              _mm_broadcast_ss(x + c1), 1);
}

void gspmv4(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    __m128 t = _mm_loadu_ps(w);  // bias, then an odd last nonzero
    w += 4;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
           a3 = _mm256_setzero_ps();
    uint32_t n = nnz[r];
    for (; n >= 8; n -= 8) {
      prefetch(w, 2);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), pair(x, col[0], col[1]), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), pair(x, col[2], col[3]), a1);
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 16), pair(x, col[4], col[5]), a2);
      a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 24), pair(x, col[6], col[7]), a3);
      w += 32;
      col += 8;
    }
    if (n & 4) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), pair(x, col[0], col[1]), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), pair(x, col[2], col[3]), a1);
      w += 16;
      col += 4;
    }
    if (n & 2) {
      a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w), pair(x, col[0], col[1]), a2);
      w += 8;
      col += 2;
    }
    if (n & 1) {
      t = _mm_fmadd_ps(_mm_loadu_ps(w), _mm_broadcast_ss(x + col[0]), t);
      w += 4;
      col += 1;
    }
    const __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    const __m128 s4 = _mm_add_ps(t, _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1)));
    _mm_storeu_ps(y + r * 4, clamp(s4, min, max));
  }
}

// x[col[0..3]] (4 gathered floats), each repeated twice: lanes 2i, 2i+1 = x[col[i]].
inline __m256 quad2(const float* x, const uint16_t* col) {
  const __m128i idx = _mm_cvtepu16_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(col)));
  const __m128 g = _mm_i32gather_ps(x, idx, 4);
  return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(g), _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
}

void gspmv2(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    float s0 = w[0], s1 = w[1];  // bias, then the last n % 4 nonzeros
    w += 2;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    uint32_t n = nnz[r];
    for (; n >= 8; n -= 8) {
      prefetch(w, 1);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), quad2(x, col), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), quad2(x, col + 4), a1);
      w += 16;
      col += 8;
    }
    if (n & 4) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), quad2(x, col), a0);
      w += 8;
      col += 4;
    }
    for (n &= 3; n != 0; --n) {
      const float xv = x[*col++];
      s0 += w[0] * xv;
      s1 += w[1] * xv;
      w += 2;
    }
    const __m256 s = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));  // c0 c1 c0 c1
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ps(h, _mm_setr_ps(s0, s1, 0.0f, 0.0f));
    h = clamp(h, min, max);
    _mm_storel_pi(reinterpret_cast<__m64*>(y + r * 2), h);
  }
}

inline __m256 gather8(const float* x, const uint16_t* col) {
  const __m256i idx = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(col)));
  return _mm256_i32gather_ps(x, idx, 4);
}

void gspmv1(size_t block_rows, const float* x, const float* w, const uint16_t* col,
            const uint32_t* nnz, float* y, float min, float max) {
  for (size_t r = 0; r < block_rows; ++r) {
    float s = *w++;  // bias, then the last n % 8 nonzeros
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    uint32_t n = nnz[r];
    for (; n >= 16; n -= 16) {
      prefetch(w, 1);
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), gather8(x, col), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + 8), gather8(x, col + 8), a1);
      w += 16;
      col += 16;
    }
    if (n & 8) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w), gather8(x, col), a0);
      w += 8;
      col += 8;
    }
    for (n &= 7; n != 0; --n) s += *w++ * x[*col++];
    const __m256 v = _mm256_add_ps(a0, a1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    const float t = _mm_cvtss_f32(h) + s;
    y[r] = t < min ? min : t > max ? max : t;
  }
}

}  // namespace

void sde_f32_gspmv_ukernel_1__avx2(size_t block_rows, const float* x, const float* w,
                                   const uint16_t* col, const uint32_t* nnz, float* y, float min,
                                   float max) {
  gspmv1(block_rows, x, w, col, nnz, y, min, max);
}
void sde_f32_gspmv_ukernel_2__avx2(size_t block_rows, const float* x, const float* w,
                                   const uint16_t* col, const uint32_t* nnz, float* y, float min,
                                   float max) {
  gspmv2(block_rows, x, w, col, nnz, y, min, max);
}
void sde_f32_gspmv_ukernel_4__avx2(size_t block_rows, const float* x, const float* w,
                                   const uint16_t* col, const uint32_t* nnz, float* y, float min,
                                   float max) {
  gspmv4(block_rows, x, w, col, nnz, y, min, max);
}
void sde_f32_gspmv_ukernel_8__avx2(size_t block_rows, const float* x, const float* w,
                                   const uint16_t* col, const uint32_t* nnz, float* y, float min,
                                   float max) {
  gspmv8(block_rows, x, w, col, nnz, y, min, max);
}

}  // namespace sde
