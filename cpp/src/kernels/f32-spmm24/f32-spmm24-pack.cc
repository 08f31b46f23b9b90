// The f32-spmm24 packing (contract in kernels/kernels.h): the stored 2:4
// values/indices of NR output rows interleaved per group of 4 inputs, so a
// SIMD kernel loads the NR first kept values with one load, the NR second
// ones with another, and the NR group bytes as one 32-bit word (a nibble per
// row). Portable: every ISA's kernel reads this layout with its own NR.
#include <cstring>

#include "kernels/kernels.h"

namespace sde {

size_t sde_f32_spmm24_packed_floats(size_t nr, size_t nc, size_t k) {
  return (nc + nr - 1) / nr * (k / 4) * 2 * nr;
}

size_t sde_f32_spmm24_packed_words(size_t nr, size_t nc, size_t k) { return (nc + nr - 1) / nr * (k / 4); }

void sde_f32_spmm24_pack(size_t nr, size_t nc, size_t k, const float* values, const uint8_t* indices,
                         float* w, uint32_t* widx) {
  const size_t groups = k / 4, panels = (nc + nr - 1) / nr;
  std::memset(w, 0, sde_f32_spmm24_packed_floats(nr, nc, k) * sizeof(float));
  std::memset(widx, 0, sde_f32_spmm24_packed_words(nr, nc, k) * sizeof(uint32_t));
  for (size_t p = 0; p < panels; ++p) {
    float* wp = w + p * groups * 2 * nr;
    uint32_t* ip = widx + p * groups;
    for (size_t r = 0; r < nr && p * nr + r < nc; ++r) {
      const size_t o = p * nr + r;
      const float* v = values + o * (k / 2);
      const uint8_t* idx = indices + o * groups;
      for (size_t g = 0; g < groups; ++g) {
        wp[g * 2 * nr + r] = v[2 * g];
        wp[g * 2 * nr + nr + r] = v[2 * g + 1];
        ip[g] |= static_cast<uint32_t>(idx[g] & 15) << (4 * r);
      }
    }
  }
}

}  // namespace sde
