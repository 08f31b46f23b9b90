#include "core/tensor.h"

#include <cstdlib>
#include <cstring>
#include <sstream>

namespace sde {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid argument";
    case StatusCode::kInvalidModel: return "invalid model";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kFileNotFound: return "file not found";
    case StatusCode::kOutOfMemory: return "out of memory";
    case StatusCode::kInternal: return "internal error";
  }
  return "unknown";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kInt32: case DType::kUInt32: return 4;
    case DType::kInt64: case DType::kFloat64: case DType::kUInt64: return 8;
    case DType::kUInt8: case DType::kInt8: case DType::kBool: return 1;
    case DType::kUInt16: case DType::kInt16: case DType::kFloat16: return 2;
    default: return 0;
  }
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kUInt16: return "uint16";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kBool: return "bool";
    case DType::kFloat16: return "float16";
    case DType::kFloat64: return "float64";
    case DType::kUInt32: return "uint32";
    case DType::kUInt64: return "uint64";
    default: return "undefined";
  }
}

bool dtype_known(int32_t t) { return dtype_size(static_cast<DType>(t)) != 0; }

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

void* aligned_alloc_bytes(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void* p = ::aligned_alloc(64, rounded);
  if (p == nullptr) fail(StatusCode::kOutOfMemory, "cannot allocate ", bytes, " bytes");
  return p;
}

void aligned_free(void* p) { std::free(p); }

Tensor Tensor::allocate(DType dtype, const Shape& shape) {
  Tensor t;
  t.dtype = dtype;
  t.shape = shape;
  size_t bytes = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  void* p = aligned_alloc_bytes(bytes);
  std::memset(p, 0, bytes);
  t.storage = std::shared_ptr<void>(p, aligned_free);
  t.data = p;
  return t;
}

Tensor Tensor::view(DType dtype, const Shape& shape, void* data, std::shared_ptr<void> keep_alive) {
  Tensor t;
  t.dtype = dtype;
  t.shape = shape;
  t.data = data;
  t.storage = std::move(keep_alive);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = allocate(dtype, shape);
  if (bytes()) std::memcpy(t.data, data, bytes());
  return t;
}

std::vector<int64_t> Tensor::to_int64_vector() const {
  std::vector<int64_t> v(static_cast<size_t>(numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    switch (dtype) {
      case DType::kInt64: v[i] = as<int64_t>()[i]; break;
      case DType::kInt32: v[i] = as<int32_t>()[i]; break;
      case DType::kFloat32: v[i] = static_cast<int64_t>(as<float>()[i]); break;
      default: fail(StatusCode::kInvalidModel, "expected an integer tensor, got ", dtype_name(dtype));
    }
  }
  return v;
}

}  // namespace sde
