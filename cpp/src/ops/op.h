// The operator interface. A graph node becomes one Op at load time; weights
// that are constant are packed then. Planning (once per set of input shapes)
// asks each Op for its output shapes and scratch needs; running calls run()
// with every buffer already placed, so a run allocates nothing.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/tensor.h"
#include "kernels/kernels.h"

namespace sde {

class ThreadPool;

// What planning knows about a value: always dtype and shape; `constant` is
// defined when the value itself is known before running (weights, folded
// shape arithmetic).
struct ValueMeta {
  DType dtype = DType::kUndefined;
  Shape shape;
  Tensor constant;
  bool is_constant() const { return constant.defined(); }
};

struct RunArgs {
  std::vector<const Tensor*> in;  // nullptr for an omitted optional input
  std::vector<Tensor*> out;
  void* scratch = nullptr;        // scratch_bytes() bytes, 64-byte aligned
  ThreadPool* pool = nullptr;
};

// What an op sees when it is created: the constants (initializers and folded
// values; nullptr for values only known at run time) and the kernel table the
// session dispatches to.
struct OpContext {
  std::function<const Tensor*(const std::string& name)> lookup;
  const KernelTable* kernels = nullptr;
  const Tensor* operator()(const std::string& name) const { return lookup(name); }
};

class Op {
 public:
  explicit Op(const Node& node) : node_(node) {}
  virtual ~Op() = default;

  // Fills `out` (one entry per node output) from the inputs' metadata
  // (nullptr for an omitted optional input). Throws Error on bad shapes.
  virtual void infer(const std::vector<const ValueMeta*>& in, std::vector<ValueMeta>& out) = 0;
  virtual size_t scratch_bytes(const std::vector<const ValueMeta*>& in, size_t threads) const {
    return 0;
  }
  virtual void run(const RunArgs& args) = 0;
  // May this op be evaluated ahead of time when all its inputs are known?
  virtual bool foldable() const { return true; }
  // Human-readable description of the chosen kernel path, for `inspect`.
  virtual std::string kernel_name() const { return "reference"; }
  // Counters an op keeps across runs (work done and skipped, state bytes...):
  // added into `out` by key; Session::stats() sums them over all nodes.
  virtual void add_stats(std::map<std::string, double>& out) const {}
  virtual void reset_stats() {}

  const Node& node() const { return node_; }

 protected:
  [[noreturn]] void error(StatusCode code, const std::string& msg) const {
    fail(code, node_.describe(), ": ", msg);
  }
  const Node node_;
};

using OpFactory = std::function<std::unique_ptr<Op>(const Node&, const OpContext&)>;

class OpRegistry {
 public:
  static const OpRegistry& instance();
  void add(const std::string& domain, const std::string& op_type, OpFactory factory);
  const OpFactory* find(const std::string& domain, const std::string& op_type) const;
  std::vector<std::string> op_names() const;

 private:
  std::map<std::pair<std::string, std::string>, OpFactory> factories_;
};

// Each op group registers itself in one function (ops/*.cc); registry.cc
// calls them all.
void register_conv_ops(OpRegistry& r);
void register_elementwise_ops(OpRegistry& r);
void register_pool_ops(OpRegistry& r);
void register_matmul_ops(OpRegistry& r);
void register_shape_ops(OpRegistry& r);
void register_group_sparse_ops(OpRegistry& r);  // ai.sparsedge
void register_llm_ops(OpRegistry& r);           // ai.sparsedge decoder ops
void register_semistructured_ops(OpRegistry& r);  // ai.sparsedge 2:4


template <typename T>
OpFactory make_factory() {
  return [](const Node& n, const OpContext& c) -> std::unique_ptr<Op> {
    return std::make_unique<T>(n, c);
  };
}

// Attribute names the graph optimiser adds to nodes it fuses an activation
// into: the output is clamped to [min, max].
constexpr const char* kFusedMinAttr = "_sde_fused_min";
constexpr const char* kFusedMaxAttr = "_sde_fused_max";

// Helpers shared by ops.
const Tensor& require_constant(const Node& node, const OpContext& consts, size_t input,
                               const char* what);
Shape broadcast_shapes(const Node& node, const Shape& a, const Shape& b);
int64_t normalize_axis(const Node& node, int64_t axis, size_t rank);

}  // namespace sde
