// Portable f32-spmm24 (the reference the SIMD kernels are tested against as
// well): NR = 4 rows per panel, two X rows at a time so each decoded nibble
// serves both.
#include "kernels/ukernels.h"

namespace sde {

void sde_f32_spmm24_ukernel_4__scalar(size_t m, size_t nc, size_t k, const float* x, size_t x_stride,
                                      const float* w, const uint32_t* widx, const float* bias, float* y,
                                      size_t y_stride) {
  constexpr size_t NR = 4;
  const size_t groups = k / 4;
  for (size_t p0 = 0; p0 < nc; p0 += NR, w += groups * 2 * NR, widx += groups) {
    const size_t rows = nc - p0 < NR ? nc - p0 : NR;
    size_t i = 0;
    for (; i + 2 <= m; i += 2) {
      const float* xa = x + i * x_stride;
      const float* xb = xa + x_stride;
      float a[NR] = {0, 0, 0, 0}, b[NR] = {0, 0, 0, 0};
      for (size_t g = 0; g < groups; ++g) {
        const uint32_t word = widx[g];
        const float* v = w + g * 2 * NR;
        for (size_t r = 0; r < NR; ++r) {
          const unsigned q0 = (word >> (4 * r)) & 3, q1 = (word >> (4 * r + 2)) & 3;
          a[r] += v[r] * xa[4 * g + q0] + v[NR + r] * xa[4 * g + q1];
          b[r] += v[r] * xb[4 * g + q0] + v[NR + r] * xb[4 * g + q1];
        }
      }
      for (size_t r = 0; r < rows; ++r) {
        const float bb = bias != nullptr ? bias[p0 + r] : 0.0f;
        y[i * y_stride + p0 + r] = a[r] + bb;
        y[(i + 1) * y_stride + p0 + r] = b[r] + bb;
      }
    }
    if (i < m) {
      const float* xa = x + i * x_stride;
      float a[NR] = {0, 0, 0, 0};
      for (size_t g = 0; g < groups; ++g) {
        const uint32_t word = widx[g];
        const float* v = w + g * 2 * NR;
        for (size_t r = 0; r < NR; ++r) {
          a[r] += v[r] * xa[4 * g + ((word >> (4 * r)) & 3)] + v[NR + r] * xa[4 * g + ((word >> (4 * r + 2)) & 3)];
        }
      }
      for (size_t r = 0; r < rows; ++r) y[i * y_stride + p0 + r] = a[r] + (bias != nullptr ? bias[p0 + r] : 0.0f);
    }
  }
}

}  // namespace sde
