// NEON 8x8 GEMM microkernel: 16 accumulators, 2 B and 2 A vectors per k
// (4 loads for 16 FMAs), leaving registers for the compiler to pipeline.
#include "kernels/f32-gemm/f32-gemm-neon.h"
#include "kernels/ukernels.h"

namespace sde {

void sde_f32_gemm_ukernel_8x8__neon(size_t mr, size_t nc, size_t kc, const float* a_packed,
                                    const float* b, size_t ldb, float* c, size_t ldc,
                                    const float* bias, int accumulate, float min, float max) {
  gemm_neon::gemm<8, 2>(mr, nc, kc, a_packed, b, ldb, c, ldc, bias, accumulate, min, max);
}

}  // namespace sde
