#include "ops/op.h"

namespace sde {

const OpRegistry& OpRegistry::instance() {
  static const OpRegistry registry = [] {
    OpRegistry r;
    register_conv_ops(r);
    register_elementwise_ops(r);
    register_pool_ops(r);
    register_matmul_ops(r);
    register_shape_ops(r);
    register_group_sparse_ops(r);
    register_llm_ops(r);
    register_semistructured_ops(r);
    return r;
  }();
  return registry;
}

void OpRegistry::add(const std::string& domain, const std::string& op_type, OpFactory factory) {
  factories_[{domain, op_type}] = std::move(factory);
}

const OpFactory* OpRegistry::find(const std::string& domain, const std::string& op_type) const {
  auto it = factories_.find({domain, op_type});
  return it == factories_.end() ? nullptr : &it->second;
}

std::vector<std::string> OpRegistry::op_names() const {
  std::vector<std::string> names;
  for (const auto& kv : factories_) {
    names.push_back(kv.first.first.empty() ? kv.first.second : kv.first.first + "." + kv.first.second);
  }
  return names;
}

const Tensor& require_constant(const Node& node, const OpContext& consts, size_t input,
                               const char* what) {
  const Tensor* t = node.has_input(input) ? consts(node.inputs[input]) : nullptr;
  if (t == nullptr) {
    fail(StatusCode::kUnsupported, node.describe(), ": ", what,
         " must be a constant (an initializer) for this runtime");
  }
  return *t;
}

Shape broadcast_shapes(const Node& node, const Shape& a, const Shape& b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1) {
      fail(StatusCode::kInvalidArgument, node.describe(), ": shapes ", shape_str(a), " and ",
           shape_str(b), " cannot be broadcast together");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int64_t normalize_axis(const Node& node, int64_t axis, size_t rank) {
  int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r) {
    fail(StatusCode::kInvalidModel, node.describe(), ": axis ", axis, " is out of range for rank ", rank);
  }
  return axis < 0 ? axis + r : axis;
}

}  // namespace sde
