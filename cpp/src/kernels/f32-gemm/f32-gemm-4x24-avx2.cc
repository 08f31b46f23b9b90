// AVX2+FMA GEMM microkernel, 4 rows x 24 columns (12 accumulators, 3 B
// vectors, 1 broadcast): a third fewer broadcasts per FMA than 6x16.
#include "kernels/f32-gemm/f32-gemm-avx2.h"
#include "kernels/ukernels.h"

namespace sde {

void sde_f32_gemm_ukernel_4x24__avx2(size_t mr, size_t nc, size_t kc, const float* a_packed,
                                     const float* b, size_t ldb, float* c, size_t ldc,
                                     const float* bias, int accumulate, float min, float max) {
  gemm_avx2::gemm<4, 3>(mr, nc, kc, a_packed, b, ldb, c, ldc, bias, accumulate, min, max);
}

}  // namespace sde
