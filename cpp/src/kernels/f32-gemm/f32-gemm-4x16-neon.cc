// NEON 4x16 GEMM microkernel: 16 accumulators, 4 B vectors and 1 A vector per
// k (5 loads for 16 FMAs); for layers with few output channels per panel.
#include "kernels/f32-gemm/f32-gemm-neon.h"
#include "kernels/ukernels.h"

namespace sde {

void sde_f32_gemm_ukernel_4x16__neon(size_t mr, size_t nc, size_t kc, const float* a_packed,
                                     const float* b, size_t ldb, float* c, size_t ldc,
                                     const float* bias, int accumulate, float min, float max) {
  gemm_neon::gemm<4, 4>(mr, nc, kc, a_packed, b, ldb, c, ldc, bias, accumulate, min, max);
}

}  // namespace sde
