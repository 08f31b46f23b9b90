#include "operators/conv2d_nchw.h"
#include "operators/im2col.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/threadpool.h"
#include "operators/gemm.h"

namespace sde {
namespace {

constexpr size_t kDwRowSlack = 32;  // floats of readable slack the dwconv kernels need per row

size_t out_size(size_t in, size_t pad_a, size_t pad_b, size_t k, size_t stride, size_t dil) {
  const size_t eff_k = dil * (k - 1) + 1;
  const size_t padded = in + pad_a + pad_b;
  if (padded < eff_k) return 0;
  return (padded - eff_k) / stride + 1;
}

[[noreturn]] void fail(const std::string& what) {
  throw std::invalid_argument("Conv2dNchw: " + what);
}

}  // namespace

Conv2dNchw::Conv2dNchw(const Conv2dParams& p, const float* weights, const float* bias,
                       const KernelTable* table)
    : p_(p) {
  if (p.in_channels == 0 || p.out_channels == 0 || p.groups == 0) {
    fail("in_channels, out_channels and groups must be positive");
  }
  if (p.in_channels % p.groups != 0 || p.out_channels % p.groups != 0) {
    fail("in_channels (" + std::to_string(p.in_channels) + ") and out_channels (" +
         std::to_string(p.out_channels) + ") must be divisible by groups (" +
         std::to_string(p.groups) + ")");
  }
  if (p.kernel_h == 0 || p.kernel_w == 0) fail("kernel size must be positive");
  if (p.stride_h == 0 || p.stride_w == 0) fail("strides must be positive");
  if (p.dilation_h == 0 || p.dilation_w == 0) fail("dilations must be positive");
  if (std::isnan(p.out_min) || std::isnan(p.out_max) || p.out_min > p.out_max) {
    fail("invalid clamp range");
  }
  if (weights == nullptr) fail("weights are null");
  const KernelTable& kt = table ? *table : kernels();
  gemm_ = kt.gemm;

  const size_t cout = p.out_channels;
  bias_.resize(cout);
  if (bias) std::memcpy(bias_.data(), bias, cout * sizeof(float));

  const bool depthwise = p.groups == p.in_channels && p.groups == p.out_channels;
  if (depthwise) {
    const size_t khw = p.kernel_h * p.kernel_w;
    weights_.resize(cout * khw);
    std::memcpy(weights_.data(), weights, cout * khw * sizeof(float));
    const bool square = p.kernel_h == p.kernel_w && p.stride_h == p.stride_w &&
                        p.dilation_h == 1 && p.dilation_w == 1;
    if (square) {
      const size_t k = p.kernel_h, s = p.stride_h;
      if (k == 3 && s == 1) dw_kernel_ = kt.dwconv.k3s1;
      if (k == 3 && s == 2) dw_kernel_ = kt.dwconv.k3s2;
      if (k == 5 && s == 1) dw_kernel_ = kt.dwconv.k5s1;
      if (k == 5 && s == 2) dw_kernel_ = kt.dwconv.k5s2;
    }
    if (dw_kernel_ != nullptr) {
      path_ = Path::kDwFast;
      path_name_ = "dwconv" + std::to_string(p.kernel_h) + "x" + std::to_string(p.kernel_w) +
                   "s" + std::to_string(p.stride_h) + "/" + isa_name(kt.dwconv.isa);
    } else {
      path_ = Path::kDwDirect;
      path_name_ = "dwconv-direct/scalar";
    }
    return;
  }

  if (gemm_.ukernel == nullptr) fail("no GEMM kernel in the kernel table");
  const size_t cin_g = p.in_channels / p.groups, cout_g = cout / p.groups;
  kc_ = cin_g * p.kernel_h * p.kernel_w;
  const bool pointwise = p.groups == 1 && p.kernel_h == 1 && p.kernel_w == 1 &&
                         p.stride_h == 1 && p.stride_w == 1 && p.pad_top == 0 &&
                         p.pad_left == 0 && p.pad_bottom == 0 && p.pad_right == 0;
  path_ = pointwise ? Path::kGemm1x1 : Path::kIm2col;
  path_name_ = std::string(pointwise ? "gemm1x1/" : "im2col+gemm/") + isa_name(gemm_.isa);
  const size_t group_floats = packed_a_floats(cout_g, kc_, gemm_.mr);
  weights_.resize(group_floats * p.groups);
  for (size_t g = 0; g < p.groups; ++g) {
    pack_a_panels(weights + g * cout_g * kc_, cout_g, kc_, kc_, 1, gemm_.mr,
                  weights_.data() + g * group_floats);
  }
}

size_t Conv2dNchw::out_h(size_t in_h) const {
  return out_size(in_h, p_.pad_top, p_.pad_bottom, p_.kernel_h, p_.stride_h, p_.dilation_h);
}
size_t Conv2dNchw::out_w(size_t in_w) const {
  return out_size(in_w, p_.pad_left, p_.pad_right, p_.kernel_w, p_.stride_w, p_.dilation_w);
}

size_t Conv2dNchw::plane_floats(size_t in_h, size_t in_w) const {
  const size_t oh = out_h(in_h), ow = out_w(in_w);
  if (oh == 0 || ow == 0) return 0;
  const size_t rows = (oh - 1) * p_.stride_h + p_.kernel_h;
  const size_t stride = (ow - 1) * p_.stride_w + p_.kernel_w + kDwRowSlack;
  return round_up(rows * stride, kScratchAlignment / sizeof(float));
}

size_t Conv2dNchw::scratch_bytes(size_t in_h, size_t in_w, size_t threads) const {
  threads = std::max<size_t>(threads, 1);
  const size_t n = out_h(in_h) * out_w(in_w);
  switch (path_) {
    case Path::kDwFast:
      return plane_floats(in_h, in_w) * sizeof(float) * threads;
    case Path::kDwDirect:
      return 0;
    case Path::kGemm1x1:
      return gemm_scratch_bytes(gemm_, n, kc_, threads, false);
    case Path::kIm2col:
      return round_up(kc_ * n * sizeof(float), kScratchAlignment) +
             gemm_scratch_bytes(gemm_, n, kc_, threads, false);
  }
  return 0;
}

void Conv2dNchw::run(size_t batch, size_t in_h, size_t in_w, const float* x, float* y,
                     void* scratch, ThreadPool* pool) const {
  if (batch == 0 || out_h(in_h) == 0 || out_w(in_w) == 0) return;
  switch (path_) {
    case Path::kDwFast:
      run_dw_fast(batch, in_h, in_w, x, y, scratch, pool);
      break;
    case Path::kDwDirect:
      run_dw_direct(batch, in_h, in_w, x, y, pool);
      break;
    case Path::kGemm1x1:
    case Path::kIm2col:
      run_gemm(batch, in_h, in_w, x, y, scratch, pool);
      break;
  }
}

void Conv2dNchw::run_dw_fast(size_t batch, size_t in_h, size_t in_w, const float* x, float* y,
                             void* scratch, ThreadPool* pool) const {
  const size_t oh = out_h(in_h), ow = out_w(in_w);
  const size_t k = p_.kernel_h, s = p_.stride_h, channels = p_.in_channels;
  const size_t rows = (oh - 1) * s + k, cols = (ow - 1) * s + k;
  const size_t stride = cols + kDwRowSlack;
  const size_t slot_floats = plane_floats(in_h, in_w);
  // Each worker's padded plane is zeroed once per run; per channel only the
  // input rectangle is copied in, so the padding (and slack) stay zero.
  const size_t slots = std::min(pool ? pool->threads() : size_t{1}, batch * channels);
  std::memset(scratch, 0, slots * slot_floats * sizeof(float));
  const size_t left = std::min(p_.pad_left, cols);
  const size_t copy_w = cols > p_.pad_left ? std::min(in_w, cols - p_.pad_left) : 0;
  const size_t row_begin = std::min(p_.pad_top, rows);
  const size_t row_end = std::min(rows, p_.pad_top + in_h);
  for_each_task(pool, batch * channels, [&](size_t task, size_t slot) {
    const size_t c = task % channels;
    float* plane = static_cast<float*>(scratch) + slot * slot_floats;
    const float* src = x + task * in_h * in_w;
    for (size_t r = row_begin; r < row_end; ++r) {
      const float* s_row = src + (r - p_.pad_top) * in_w;
      float* d_row = plane + r * stride + left;
      for (size_t i = 0; i < copy_w; ++i) d_row[i] = s_row[i];
    }
    dw_kernel_(oh, ow, plane, stride, weights_.data() + c * k * k, bias_.data()[c],
               y + task * oh * ow, ow, p_.out_min, p_.out_max);
  });
}

void Conv2dNchw::run_dw_direct(size_t batch, size_t in_h, size_t in_w, const float* x, float* y,
                               ThreadPool* pool) const {
  const size_t oh = out_h(in_h), ow = out_w(in_w);
  const size_t kh = p_.kernel_h, kw = p_.kernel_w, channels = p_.in_channels;
  for_each_task(pool, batch * channels, [&](size_t task, size_t) {
    const size_t c = task % channels;
    const float* src = x + task * in_h * in_w;
    const float* w = weights_.data() + c * kh * kw;
    float* dst = y + task * oh * ow;
    for (size_t oy = 0; oy < oh; ++oy) {
      for (size_t ox = 0; ox < ow; ++ox) {
        float acc = bias_.data()[c];
        for (size_t ky = 0; ky < kh; ++ky) {
          const size_t iy = oy * p_.stride_h + ky * p_.dilation_h - p_.pad_top;
          if (oy * p_.stride_h + ky * p_.dilation_h < p_.pad_top || iy >= in_h) continue;
          for (size_t kx = 0; kx < kw; ++kx) {
            const size_t ix = ox * p_.stride_w + kx * p_.dilation_w - p_.pad_left;
            if (ox * p_.stride_w + kx * p_.dilation_w < p_.pad_left || ix >= in_w) continue;
            acc += w[ky * kw + kx] * src[iy * in_w + ix];
          }
        }
        dst[oy * ow + ox] = std::min(std::max(acc, p_.out_min), p_.out_max);
      }
    }
  });
}

void Conv2dNchw::run_gemm(size_t batch, size_t in_h, size_t in_w, const float* x, float* y,
                          void* scratch, ThreadPool* pool) const {
  const size_t oh = out_h(in_h), ow = out_w(in_w), n = oh * ow;
  const size_t cin_g = p_.in_channels / p_.groups, cout_g = p_.out_channels / p_.groups;
  const size_t group_floats = packed_a_floats(cout_g, kc_, gemm_.mr);
  float* col = static_cast<float*>(scratch);
  void* gemm_scratch = scratch;
  if (path_ == Path::kIm2col) {
    gemm_scratch = static_cast<char*>(scratch) + round_up(kc_ * n * sizeof(float), kScratchAlignment);
  }
  for (size_t b = 0; b < batch; ++b) {
    for (size_t g = 0; g < p_.groups; ++g) {
      const float* xg = x + (b * p_.in_channels + g * cin_g) * in_h * in_w;
      GemmArgs args;
      args.m = cout_g;
      args.n = n;
      args.k = kc_;
      args.a_packed = weights_.data() + g * group_floats;
      args.c = y + (b * p_.out_channels + g * cout_g) * n;
      args.ldc = n;
      args.bias = bias_.data() + g * cout_g;
      args.min = p_.out_min;
      args.max = p_.out_max;
      if (path_ == Path::kGemm1x1) {
        args.b = xg;
        args.ldb = n;
      } else {
        // col[(c * kh + ky) * kw + kx][oy * ow + ox] = x[c][oy*sh + ky*dh - pt][ox*sw + kx*dw - pl]
        const size_t kh = p_.kernel_h, kw = p_.kernel_w;
        parallel_for(pool, kc_, 8, [&](size_t r0, size_t r1) {
          for (size_t r = r0; r < r1; ++r) {
            const size_t c = r / (kh * kw), ky = (r / kw) % kh, kx = r % kw;
            im2col_row(p_, xg + c * in_h * in_w, in_h, in_w, oh, ow, ky, kx, col + r * n);
          }
        });
        args.b = col;
        args.ldb = n;
      }
      gemm_run(gemm_, args, gemm_scratch, pool);
    }
  }
}

}  // namespace sde
