// Obviously correct references (double accumulation, direct loops).
#pragma once

#include <cstddef>
#include <vector>

#include "test_util.h"

namespace sde_test {

struct ConvShape {
  size_t batch, cin, cout, groups, in_h, in_w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
  size_t out_h() const {
    const long v = (long(in_h + pt + pb) - long(dh * (kh - 1) + 1));
    return v < 0 ? 0 : size_t(v) / sh + 1;
  }
  size_t out_w() const {
    const long v = (long(in_w + pl + pr) - long(dw * (kw - 1) + 1));
    return v < 0 ? 0 : size_t(v) / sw + 1;
  }
};

// x [N, Cin, H, W], w [Cout, Cin/g, kh, kw] -> [N, Cout, OH, OW].
inline std::vector<double> conv2d_reference(const ConvShape& s, const float* x, const float* w,
                                            const float* bias, float lo, float hi) {
  const size_t oh = s.out_h(), ow = s.out_w();
  const size_t cin_g = s.cin / s.groups, cout_g = s.cout / s.groups;
  std::vector<double> y(s.batch * s.cout * oh * ow);
  for (size_t n = 0; n < s.batch; ++n)
    for (size_t co = 0; co < s.cout; ++co)
      for (size_t oy = 0; oy < oh; ++oy)
        for (size_t ox = 0; ox < ow; ++ox) {
          const size_t g = co / cout_g;
          double acc = bias ? bias[co] : 0.0;
          for (size_t ci = 0; ci < cin_g; ++ci)
            for (size_t ky = 0; ky < s.kh; ++ky)
              for (size_t kx = 0; kx < s.kw; ++kx) {
                const long iy = long(oy * s.sh + ky * s.dh) - long(s.pt);
                const long ix = long(ox * s.sw + kx * s.dw) - long(s.pl);
                if (iy < 0 || ix < 0 || iy >= long(s.in_h) || ix >= long(s.in_w)) continue;
                const size_t c = g * cin_g + ci;
                acc += double(w[((co * cin_g + ci) * s.kh + ky) * s.kw + kx]) *
                       double(x[((n * s.cin + c) * s.in_h + size_t(iy)) * s.in_w + size_t(ix)]);
              }
          y[((n * s.cout + co) * oh + oy) * ow + ox] = clampd(acc, lo, hi);
        }
  return y;
}

// y[m, n] = clamp(x[m, k] * B[k, n] + bias[n]); B[kk][j] = b[kk * rs + j * cs].
inline std::vector<double> matmul_reference(size_t m, size_t k, size_t n, const float* x,
                                            const float* b, size_t rs, size_t cs,
                                            const float* bias, float lo, float hi) {
  std::vector<double> y(m * n);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      double acc = bias ? bias[j] : 0.0;
      for (size_t kk = 0; kk < k; ++kk) acc += double(x[i * k + kk]) * double(b[kk * rs + j * cs]);
      y[i * n + j] = clampd(acc, lo, hi);
    }
  return y;
}

}  // namespace sde_test
