#include "operators/fully_connected.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "core/threadpool.h"
#include "operators/gemm.h"

namespace sde {

FullyConnected::FullyConnected(size_t k, size_t n, const float* weights,
                               bool weights_are_k_by_n, const float* bias, float out_min,
                               float out_max, const KernelTable* table)
    : k_(k), n_(n), out_min_(out_min), out_max_(out_max), has_bias_(bias != nullptr) {
  if (k == 0 || n == 0) throw std::invalid_argument("FullyConnected: k and n must be positive");
  if (weights == nullptr) throw std::invalid_argument("FullyConnected: weights are null");
  if (std::isnan(out_min) || std::isnan(out_max) || out_min > out_max) {
    throw std::invalid_argument("FullyConnected: invalid clamp range");
  }
  const KernelTable& kt = table ? *table : kernels();
  gemm_ = kt.gemm;
  if (gemm_.ukernel == nullptr) {
    throw std::invalid_argument("FullyConnected: no GEMM kernel in the kernel table");
  }
  if (kt.gemv.ukernel != nullptr && kt.gemv.nr == gemm_.nr) gemv_ = kt.gemv;
  b_packed_.resize(packed_b_floats(k, n, gemm_.nr));
  if (weights_are_k_by_n) {
    pack_b_strips(weights, k, n, n, 1, gemm_.nr, b_packed_.data());
  } else {
    pack_b_strips(weights, k, n, 1, k, gemm_.nr, b_packed_.data());
  }
  bias_.resize(n);
  if (bias) std::memcpy(bias_.data(), bias, n * sizeof(float));
}

size_t FullyConnected::scratch_bytes(size_t m, size_t threads) const {
  return round_up(packed_a_floats(m, k_, gemm_.mr) * sizeof(float), kScratchAlignment);
}

void FullyConnected::run(size_t m, const float* x, float* y, void* scratch,
                         ThreadPool* pool) const {
  if (m == 0) return;
  if (m == 1 && gemv_.ukernel != nullptr) {
    // Columns split by whole strips; each output is computed by one call, so
    // results do not depend on the thread count.
    const size_t nr = gemv_.nr, strips = (n_ + nr - 1) / nr;
    const float* bias = has_bias_ ? bias_.data() : nullptr;
    parallel_for(pool, strips, 64, [&](size_t s0, size_t s1) {
      const size_t j0 = s0 * nr, cols = std::min(n_, s1 * nr) - j0;
      gemv_.ukernel(cols, k_, x, b_packed_.data() + j0 * k_, bias ? bias + j0 : nullptr, y + j0,
                    out_min_, out_max_);
    });
    return;
  }
  float* a_packed = static_cast<float*>(scratch);
  pack_a_panels(x, m, k_, k_, 1, gemm_.mr, a_packed);
  GemmArgs args;
  args.m = m;
  args.n = n_;
  args.k = k_;
  args.a_packed = a_packed;
  args.b_packed = b_packed_.data();
  args.c = y;
  args.ldc = n_;
  args.min = out_min_;
  args.max = out_max_;
  if (has_bias_) {  // the bias runs along n, so it seeds C instead of the kernel's row bias
    for (size_t i = 0; i < m; ++i) std::memcpy(y + i * n_, bias_.data(), n_ * sizeof(float));
    args.accumulate_into_c = true;
  }
  gemm_run(gemm_, args, nullptr, pool);
}

}  // namespace sde
