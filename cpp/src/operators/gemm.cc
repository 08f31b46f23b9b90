#include "operators/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "operators/aligned_buffer.h"

namespace sde {

GemmTuning& gemm_tuning() {
  static GemmTuning tuning;
  return tuning;
}

size_t packed_a_floats(size_t m, size_t k, size_t mr) { return round_up(m, mr) * k; }

void pack_a_panels(const float* a, size_t m, size_t k, size_t row_stride, size_t col_stride,
                   size_t mr, float* out) {
  for (size_t p0 = 0; p0 < m; p0 += mr) {
    float* panel = out + p0 * k;
    for (size_t kk = 0; kk < k; ++kk) {
      for (size_t r = 0; r < mr; ++r) {
        panel[kk * mr + r] = p0 + r < m ? a[(p0 + r) * row_stride + kk * col_stride] : 0.0f;
      }
    }
  }
}

size_t packed_b_floats(size_t k, size_t n, size_t nr) { return round_up(n, nr) * k; }

void pack_b_strips(const float* b, size_t k, size_t n, size_t row_stride, size_t col_stride,
                   size_t nr, float* out) {
  for (size_t j0 = 0; j0 < n; j0 += nr) {
    float* strip = out + j0 * k;
    for (size_t kk = 0; kk < k; ++kk) {
      for (size_t j = 0; j < nr; ++j) {
        strip[kk * nr + j] = j0 + j < n ? b[kk * row_stride + (j0 + j) * col_stride] : 0.0f;
      }
    }
  }
}

namespace {

struct Blocking {
  size_t kc;          // K block (the last may be shorter)
  size_t k_blocks;
  size_t nc;          // N block, multiple of nr
  size_t n_blocks;
};

Blocking choose_blocking(const GemmConfig& cfg, size_t n, size_t k) {
  const GemmTuning& t = gemm_tuning();
  Blocking b;
  // Even K blocks (a short last block wastes the accumulate pass).
  b.k_blocks = std::max<size_t>(1, divide_round_up(k, std::max<size_t>(t.kc, 1)));
  b.kc = divide_round_up(k, b.k_blocks);
  b.k_blocks = divide_round_up(k, b.kc);
  b.nc = std::min(round_up(std::max<size_t>(t.nc, cfg.nr), cfg.nr), round_up(n, cfg.nr));
  b.n_blocks = divide_round_up(n, b.nc);
  return b;
}

// Packs B[k0 : k0+kc, n0 : n0+nc] (raw row-major) into NR-wide strips.
void pack_b_block(const float* b, size_t ldb, size_t k0, size_t kc, size_t n0, size_t nc,
                  size_t nr, float* out) {
  const size_t full = nc / nr * nr;
  for (size_t kk = 0; kk < kc; ++kk) {
    const float* src = b + (k0 + kk) * ldb + n0;
    float* dst = out + kk * nr;
    size_t j = 0;
    for (; j < full; j += nr) std::memcpy(dst + j * kc, src + j, nr * sizeof(float));
    if (j < nc) std::memcpy(dst + j * kc, src + j, (nc - j) * sizeof(float));
  }
}

}  // namespace

size_t gemm_scratch_bytes(const GemmConfig& cfg, size_t n, size_t k, size_t threads,
                          bool b_prepacked) {
  if (b_prepacked || n == 0 || k == 0) return 0;
  const Blocking bl = choose_blocking(cfg, n, k);
  const size_t per_slot = round_up(bl.kc * bl.nc * sizeof(float), kScratchAlignment);
  return per_slot * std::max<size_t>(threads, 1);
}

void gemm_run(const GemmConfig& cfg, const GemmArgs& g, void* scratch, ThreadPool* pool) {
  if (g.m == 0 || g.n == 0) return;
  const size_t mr = cfg.mr, nr = cfg.nr;
  const f32_gemm_ukernel_fn ukernel = cfg.ukernel;
  if (g.k == 0) {  // C = clamp(bias) or clamp(C)
    for (size_t i = 0; i < g.m; ++i) {
      for (size_t j = 0; j < g.n; ++j) {
        float& c = g.c[i * g.ldc + j];
        const float v = g.accumulate_into_c ? c : (g.bias ? g.bias[i] : 0.0f);
        c = std::min(std::max(v, g.min), g.max);
      }
    }
    return;
  }
  const Blocking bl = choose_blocking(cfg, g.n, g.k);
  const size_t panels = divide_round_up(g.m, mr);
  const size_t threads = pool ? pool->threads() : 1;
  // Split M too when there are too few N blocks to keep every thread busy.
  size_t m_groups = 1;
  if (threads > 1 && bl.n_blocks < 4 * threads) {
    m_groups = std::min(panels, divide_round_up(4 * threads, bl.n_blocks));
  }
  const size_t panels_per_group = divide_round_up(panels, m_groups);
  m_groups = divide_round_up(panels, panels_per_group);
  const size_t slot_floats = round_up(bl.kc * bl.nc * sizeof(float), kScratchAlignment) / sizeof(float);
  const float inf = INFINITY;
  const bool pack_b = g.b_packed == nullptr && g.ldb >= gemm_tuning().pack_b_min_ldb;

  for_each_task(pool, m_groups * bl.n_blocks, [&](size_t task, size_t slot) {
    const size_t nb = task % bl.n_blocks, mg = task / bl.n_blocks;
    const size_t n0 = nb * bl.nc, ncb = std::min(bl.nc, g.n - n0);
    const size_t p_begin = mg * panels_per_group;
    const size_t p_end = std::min(panels, p_begin + panels_per_group);
    float* bbuf = static_cast<float*>(scratch) + slot * slot_floats;
    for (size_t kb = 0; kb < bl.k_blocks; ++kb) {
      const size_t k0 = kb * bl.kc, kcb = std::min(bl.kc, g.k - k0);
      const bool last = kb + 1 == bl.k_blocks;
      const int accumulate = (kb > 0 || g.accumulate_into_c) ? 1 : 0;
      const float lo = last ? g.min : -inf, hi = last ? g.max : inf;
      const float* bstrips;
      size_t strip_stride;  // floats between consecutive strips
      size_t ldb = nr;
      if (g.b_packed) {
        bstrips = g.b_packed + n0 * g.k + k0 * nr;
        strip_stride = g.k * nr;
      } else if (!pack_b) {
        bstrips = g.b + k0 * g.ldb + n0;
        strip_stride = nr;
        ldb = g.ldb;
      } else {
        pack_b_block(g.b, g.ldb, k0, kcb, n0, ncb, nr, bbuf);
        bstrips = bbuf;
        strip_stride = kcb * nr;
      }
      for (size_t p = p_begin; p < p_end; ++p) {
        const size_t row0 = p * mr, mrp = std::min(mr, g.m - row0);
        const float* ap = g.a_packed + row0 * g.k + k0 * mr;
        const float* bias = g.bias ? g.bias + row0 : nullptr;
        float* cp = g.c + row0 * g.ldc + n0;
        const float* bp = bstrips;
        for (size_t j = 0; j < ncb; j += nr) {
          ukernel(mrp, std::min(nr, ncb - j), kcb, ap, bp, ldb, cp + j, g.ldc, bias, accumulate,
                  lo, hi);
          bp += strip_stride;
        }
      }
    }
  });
}

}  // namespace sde
