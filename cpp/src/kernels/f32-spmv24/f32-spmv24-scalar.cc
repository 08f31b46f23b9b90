// Portable f32-spmv24: one output row at a time, two shifts and masks per
// group byte.
#include "kernels/ukernels.h"

namespace sde {

void sde_f32_spmv24_ukernel_1__scalar(size_t nc, size_t k, const float* x, const float* values,
                                      const uint8_t* indices, const float* bias, float* y) {
  const size_t groups = k / 4;
  for (size_t o = 0; o < nc; ++o) {
    const float* v = values + o * (k / 2);
    const uint8_t* idx = indices + o * groups;
    float acc = 0.0f;
    for (size_t g = 0; g < groups; ++g) {
      const float* xg = x + 4 * g;
      acc += v[2 * g] * xg[idx[g] & 3] + v[2 * g + 1] * xg[(idx[g] >> 2) & 3];
    }
    y[o] = acc + (bias != nullptr ? bias[o] : 0.0f);
  }
}

}  // namespace sde
