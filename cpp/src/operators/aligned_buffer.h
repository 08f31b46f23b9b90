// A 64-byte aligned float array (owned weights, packed panels).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace sde {

constexpr size_t kScratchAlignment = 64;

inline size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }
inline size_t divide_round_up(size_t x, size_t m) { return (x + m - 1) / m; }

class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(size_t n) { resize(n); }
  ~AlignedFloats() { std::free(data_); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  AlignedFloats(AlignedFloats&& o) noexcept : data_(o.data_), size_(o.size_) {
    o.data_ = nullptr;
    o.size_ = 0;
  }
  AlignedFloats& operator=(AlignedFloats&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  // Contents are zeroed.
  void resize(size_t n) {
    std::free(data_);
    data_ = nullptr;
    size_ = n;
    if (n == 0) return;
    void* p = ::aligned_alloc(kScratchAlignment, round_up(n * sizeof(float), kScratchAlignment));
    if (p == nullptr) throw std::bad_alloc();
    data_ = static_cast<float*>(p);
    std::memset(data_, 0, n * sizeof(float));
  }
  float* data() { return data_; }
  const float* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  float* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sde
