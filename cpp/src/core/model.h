// The in-memory form of an ONNX model, as read from the protobuf wire format
// by onnx_reader.cc. It holds only what the runtime uses; unknown fields are
// skipped, malformed ones are errors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace sde {

struct Graph;

struct Attribute {
  // AttributeProto.AttributeType numbers.
  enum Type : int32_t {
    kUndefined = 0, kFloat = 1, kInt = 2, kString = 3, kTensor = 4, kGraph = 5,
    kFloats = 6, kInts = 7, kStrings = 8, kTensors = 9, kGraphs = 10,
  };
  std::string name;
  std::string ref_attr_name;  // set inside function bodies
  Type type = kUndefined;
  float f = 0.f;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  bool has_graph = false;  // subgraphs (If/Loop/Scan) are not supported
};

struct Node {
  std::string name, op_type, domain;
  std::vector<std::string> inputs, outputs;  // "" marks an omitted optional
  std::vector<Attribute> attributes;

  const Attribute* find(const std::string& attr) const;
  bool has(const std::string& attr) const { return find(attr) != nullptr; }
  int64_t get_int(const std::string& attr, int64_t fallback) const;
  float get_float(const std::string& attr, float fallback) const;
  std::string get_string(const std::string& attr, const std::string& fallback) const;
  std::vector<int64_t> get_ints(const std::string& attr, std::vector<int64_t> fallback = {}) const;
  std::vector<float> get_floats(const std::string& attr, std::vector<float> fallback = {}) const;
  void set_float(const std::string& attr, float value);
  // "Conv 'conv1'" for messages.
  std::string describe() const;
  size_t num_inputs() const;  // inputs present, trailing omitted ones dropped
  bool has_input(size_t idx) const { return idx < inputs.size() && !inputs[idx].empty(); }
};

// A dimension is either a number (>= 0) or a symbol (value -1, `param` set).
struct Dim {
  int64_t value = -1;
  std::string param;
};

struct ValueInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  bool has_shape = false;
  std::vector<Dim> dims;
};

struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::map<std::string, Tensor> initializers;
  std::vector<std::string> initializer_order;
  std::vector<ValueInfo> inputs, outputs, value_info;
};

struct Function {
  std::string name, domain;
  std::vector<std::string> inputs, outputs, attribute_names;
  std::vector<Attribute> attribute_defaults;
  std::vector<Node> nodes;
  std::map<std::string, int64_t> opsets;
};

struct Model {
  int64_t ir_version = 0;
  std::map<std::string, int64_t> opsets;  // domain ("" = ai.onnx) -> version
  std::string producer_name, producer_version;
  std::map<std::string, std::string> metadata;
  Graph graph;
  std::vector<Function> functions;
};

// Reads a model. `base_dir` resolves external-data locations; `mapped` keeps
// the file's mapping alive when `data` points into one (tensors may then
// borrow it instead of copying). Throws Error (kInvalidModel, kFileNotFound,
// kUnsupported).
Model parse_model(const uint8_t* data, size_t size, const std::string& base_dir,
                  std::shared_ptr<void> mapped);
Model load_model_file(const std::string& path);
Model load_model_bytes(const uint8_t* data, size_t size);

}  // namespace sde
