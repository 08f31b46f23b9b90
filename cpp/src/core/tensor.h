// Tensors: a dtype, a shape and a pointer to data kept alive by `storage`.
// Storage is shared (a 64-byte aligned heap buffer, a memory-mapped file
// region, or an arena owned by a plan), so views are cheap to copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace sde {

// Values are ONNX TensorProto.DataType numbers.
enum class DType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
};

size_t dtype_size(DType t);  // 0 for unsupported
const char* dtype_name(DType t);  // "float32", "int64", ...
bool dtype_known(int32_t onnx_type);

using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

void* aligned_alloc_bytes(size_t bytes);  // 64-byte aligned, throws kOutOfMemory
void aligned_free(void* p);

struct Tensor {
  DType dtype = DType::kUndefined;
  Shape shape;
  void* data = nullptr;
  std::shared_ptr<void> storage;

  static Tensor allocate(DType dtype, const Shape& shape);
  // A view of external memory; `keep_alive` (may be null) owns it.
  static Tensor view(DType dtype, const Shape& shape, void* data,
                     std::shared_ptr<void> keep_alive = nullptr);

  int64_t numel() const { return shape_numel(shape); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool defined() const { return dtype != DType::kUndefined; }
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
  Tensor clone() const;
  // Reads the values of a small integer tensor (int64/int32) as int64.
  std::vector<int64_t> to_int64_vector() const;
};

}  // namespace sde
