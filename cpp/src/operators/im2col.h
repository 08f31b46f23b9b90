// im2col for NCHW convolutions, shared by the dense and the group-sparse
// convolution operators.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "operators/aligned_buffer.h"

namespace sde {

// Writes one row of the column matrix, the tap (ky, kx) of one input plane:
//   dst[oy * out_w + ox] = src[oy*sh + ky*dh - pad_top][ox*sw + kx*dw - pad_left]
// (zero outside the image). `P` is any params struct with the ONNX Conv
// geometry fields (stride_*, dilation_*, pad_top, pad_left).
template <typename P>
void im2col_row(const P& p, const float* src, size_t in_h, size_t in_w, size_t out_h, size_t out_w,
                size_t ky, size_t kx, float* dst) {
  // Valid ox: pad_left <= ox*sw + off < pad_left + in_w.
  const size_t off = kx * p.dilation_w;
  size_t ox_lo = 0, ox_hi = 0;  // [ox_lo, ox_hi) reads the image
  if (off < p.pad_left) ox_lo = divide_round_up(p.pad_left - off, p.stride_w);
  if (p.pad_left + in_w > off) ox_hi = std::min(out_w, divide_round_up(p.pad_left + in_w - off, p.stride_w));
  ox_lo = std::min(ox_lo, out_w);
  ox_hi = std::max(ox_hi, ox_lo);
  for (size_t oy = 0; oy < out_h; ++oy) {
    float* d = dst + oy * out_w;
    const size_t yy = oy * p.stride_h + ky * p.dilation_h;
    if (yy < p.pad_top || yy - p.pad_top >= in_h) {
      std::memset(d, 0, out_w * sizeof(float));
      continue;
    }
    const float* s = src + (yy - p.pad_top) * in_w;
    std::fill(d, d + ox_lo, 0.0f);
    if (p.stride_w == 1) {
      std::memcpy(d + ox_lo, s + (ox_lo + off - p.pad_left), (ox_hi - ox_lo) * sizeof(float));
    } else {
      for (size_t ox = ox_lo; ox < ox_hi; ++ox) d[ox] = s[ox * p.stride_w + off - p.pad_left];
    }
    std::fill(d + ox_hi, d + out_w, 0.0f);
  }
}

}  // namespace sde
