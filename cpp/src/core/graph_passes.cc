#include "core/graph_passes.h"

#include <cmath>
#include <limits>
#include <queue>

#include "ops/op.h"

namespace sde {

std::vector<Node> topological_sort(const std::vector<Node>& nodes, const std::set<std::string>& defined) {
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const std::string& o : nodes[i].outputs) {
      if (o.empty()) continue;
      if (defined.count(o)) {
        fail(StatusCode::kInvalidModel, nodes[i].describe(), " writes '", o,
             "', which is already a graph input or initializer");
      }
      if (!producer.emplace(o, i).second) {
        fail(StatusCode::kInvalidModel, nodes[i].describe(), " writes '", o, "', which ",
             nodes[producer[o]].describe(), " also writes");
      }
    }
  }
  std::vector<size_t> pending(nodes.size(), 0);
  std::vector<std::vector<size_t>> consumers(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const std::string& in : nodes[i].inputs) {
      if (in.empty() || defined.count(in)) continue;
      auto p = producer.find(in);
      if (p == producer.end()) {
        fail(StatusCode::kInvalidModel, nodes[i].describe(), " reads '", in,
             "', which no node produces and which is neither a graph input nor an initializer");
      }
      ++pending[i];
      consumers[p->second].push_back(i);
    }
  }
  // Kahn's algorithm; a min-heap keeps the file's order where it is free.
  std::priority_queue<size_t, std::vector<size_t>, std::greater<size_t>> ready;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (pending[i] == 0) ready.push(i);
  }
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    sorted.push_back(nodes[i]);
    for (size_t c : consumers[i]) {
      if (--pending[c] == 0) ready.push(c);
    }
  }
  if (sorted.size() != nodes.size()) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      if (pending[i] != 0) {
        fail(StatusCode::kInvalidModel, "the graph has a cycle: ", nodes[i].describe(),
             " depends, directly or not, on its own output");
      }
    }
  }
  return sorted;
}

namespace {

std::map<std::string, int> consumer_counts(const std::vector<Node>& nodes,
                                           const std::set<std::string>& graph_outputs) {
  std::map<std::string, int> counts;
  for (const Node& n : nodes) {
    for (const std::string& in : n.inputs) {
      if (!in.empty()) ++counts[in];
    }
  }
  for (const std::string& o : graph_outputs) counts[o] += 1000;  // never fuse away
  return counts;
}

void rename_input(std::vector<Node>& nodes, const std::string& from, const std::string& to) {
  for (Node& n : nodes) {
    for (std::string& in : n.inputs) {
      if (in == from) in = to;
    }
  }
}

std::map<std::string, size_t> producer_map(const std::vector<Node>& nodes) {
  std::map<std::string, size_t> producer;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const std::string& o : nodes[i].outputs) producer[o] = i;
  }
  return producer;
}

void erase_marked(std::vector<Node>& nodes, const std::vector<bool>& removed) {
  std::vector<Node> kept;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!removed[i]) kept.push_back(std::move(nodes[i]));
  }
  nodes.swap(kept);
}

const Tensor* lookup(const ConstantMap& consts, const Node& n, size_t idx) {
  if (!n.has_input(idx)) return nullptr;
  auto it = consts.find(n.inputs[idx]);
  return it == consts.end() ? nullptr : &it->second;
}

}  // namespace

void remove_identities(std::vector<Node>& nodes, const std::set<std::string>& graph_outputs) {
  std::vector<Node> kept;
  for (size_t i = 0; i < nodes.size(); ++i) {
    Node& n = nodes[i];
    bool passthrough = n.domain.empty() && (n.op_type == "Identity" || n.op_type == "Dropout") &&
                       n.has_input(0) && !n.outputs.empty() && !graph_outputs.count(n.outputs[0]);
    if (passthrough && n.op_type == "Dropout") {
      // A Dropout whose mask output is used, or in training mode, is left to
      // the op (which rejects training mode with a clear message).
      bool mask_used = n.outputs.size() > 1 && !n.outputs[1].empty();
      passthrough = !mask_used && n.num_inputs() < 3;
    }
    if (!passthrough) {
      kept.push_back(n);
      continue;
    }
    rename_input(nodes, n.outputs[0], n.inputs[0]);
    rename_input(kept, n.outputs[0], n.inputs[0]);
  }
  nodes.swap(kept);
}

void fold_batchnorm_into_conv(std::vector<Node>& nodes, ConstantMap& consts,
                              const std::set<std::string>& graph_outputs) {
  std::map<std::string, int> uses = consumer_counts(nodes, graph_outputs);
  std::map<std::string, size_t> producer = producer_map(nodes);
  std::vector<bool> removed(nodes.size(), false);
  for (size_t b = 0; b < nodes.size(); ++b) {
    Node& bn = nodes[b];
    if (!bn.domain.empty() || bn.op_type != "BatchNormalization" || bn.outputs.size() != 1) continue;
    if (bn.get_int("training_mode", 0) != 0) continue;
    auto p = producer.find(bn.inputs[0]);
    if (p == producer.end()) continue;
    Node& conv = nodes[p->second];
    if (!conv.domain.empty() || conv.op_type != "Conv" || uses[bn.inputs[0]] != 1) continue;
    const Tensor* w = lookup(consts, conv, 1);
    const Tensor* bias = lookup(consts, conv, 2);
    const Tensor *scale = lookup(consts, bn, 1), *beta = lookup(consts, bn, 2),
                 *mean = lookup(consts, bn, 3), *var = lookup(consts, bn, 4);
    if (!w || !scale || !beta || !mean || !var || (conv.has_input(2) && !bias)) continue;
    if (w->dtype != DType::kFloat32 || w->shape.empty()) continue;
    const int64_t oc = w->shape[0];
    bool ok = scale->numel() == oc && beta->numel() == oc && mean->numel() == oc && var->numel() == oc &&
              (!bias || bias->numel() == oc);
    for (const Tensor* t : {scale, beta, mean, var}) ok = ok && t->dtype == DType::kFloat32;
    if (!ok) continue;
    const float eps = bn.get_float("epsilon", 1e-5f);
    Tensor nw = w->clone();
    Tensor nb = Tensor::allocate(DType::kFloat32, {oc});
    const int64_t per = w->numel() / oc;
    for (int64_t o = 0; o < oc; ++o) {
      const double s = scale->as<float>()[o] / std::sqrt(static_cast<double>(var->as<float>()[o]) + eps);
      for (int64_t j = 0; j < per; ++j) nw.as<float>()[o * per + j] = static_cast<float>(nw.as<float>()[o * per + j] * s);
      const double b0 = bias ? bias->as<float>()[o] : 0.0;
      nb.as<float>()[o] = static_cast<float>((b0 - mean->as<float>()[o]) * s + beta->as<float>()[o]);
    }
    const std::string base = conv.outputs[0];
    const std::string wname = base + "/bn_folded_weight", bname = base + "/bn_folded_bias";
    consts[wname] = nw;
    consts[bname] = nb;
    conv.inputs.resize(3);
    conv.inputs[1] = wname;
    conv.inputs[2] = bname;
    conv.outputs[0] = bn.outputs[0];
    producer[bn.outputs[0]] = p->second;
    removed[b] = true;
  }
  erase_marked(nodes, removed);
}

namespace {
// The clamp an activation node applies, if it is one we can fuse.
bool activation_bounds(const Node& act, const ConstantMap& consts, float& lo, float& hi) {
  if (!act.domain.empty()) return false;
  const float inf = std::numeric_limits<float>::infinity();
  if (act.op_type == "Relu") {
    lo = 0.f;
    hi = inf;
    return true;
  }
  if (act.op_type != "Clip") return false;
  lo = -inf;
  hi = inf;
  if (act.has("min") || act.has("max")) {  // opset < 11 form
    lo = act.get_float("min", -inf);
    hi = act.get_float("max", inf);
    return true;
  }
  for (size_t idx : {size_t(1), size_t(2)}) {
    if (!act.has_input(idx)) continue;
    const Tensor* t = lookup(consts, act, idx);
    if (!t || t->dtype != DType::kFloat32 || t->numel() != 1) return false;
    (idx == 1 ? lo : hi) = t->as<float>()[0];
  }
  return true;
}
}  // namespace

void fuse_activations(std::vector<Node>& nodes, const ConstantMap& consts,
                      const std::set<std::string>& graph_outputs) {
  std::map<std::string, int> uses = consumer_counts(nodes, graph_outputs);
  std::map<std::string, size_t> producer = producer_map(nodes);
  std::vector<bool> removed(nodes.size(), false);
  for (size_t a = 0; a < nodes.size(); ++a) {
    Node& act = nodes[a];
    float lo, hi;
    if (!act.has_input(0) || act.outputs.size() != 1 || !activation_bounds(act, consts, lo, hi)) continue;
    auto p = producer.find(act.inputs[0]);
    if (p == producer.end() || uses[act.inputs[0]] != 1) continue;
    Node& prod = nodes[p->second];
    bool fusable = prod.domain.empty() && (prod.op_type == "Conv" || prod.op_type == "Gemm" ||
                                           prod.op_type == "MatMul");
    if (!fusable || prod.outputs.size() != 1) continue;
    const float inf = std::numeric_limits<float>::infinity();
    float cur_lo = prod.get_float(kFusedMinAttr, -inf), cur_hi = prod.get_float(kFusedMaxAttr, inf);
    prod.set_float(kFusedMinAttr, std::max(cur_lo, lo));
    prod.set_float(kFusedMaxAttr, std::min(cur_hi, hi));
    prod.outputs[0] = act.outputs[0];
    producer[act.outputs[0]] = p->second;
    removed[a] = true;
  }
  erase_marked(nodes, removed);
}

void remove_dead_nodes(std::vector<Node>& nodes, const std::set<std::string>& graph_outputs) {
  std::set<std::string> needed(graph_outputs.begin(), graph_outputs.end());
  std::vector<bool> keep(nodes.size(), false);
  for (size_t i = nodes.size(); i-- > 0;) {
    for (const std::string& o : nodes[i].outputs) {
      if (!o.empty() && needed.count(o)) keep[i] = true;
    }
    if (keep[i]) {
      for (const std::string& in : nodes[i].inputs) {
        if (!in.empty()) needed.insert(in);
      }
    }
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (keep[i]) kept.push_back(nodes[i]);
  }
  nodes.swap(kept);
}

}  // namespace sde
