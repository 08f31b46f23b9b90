#include "core/session.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "core/graph_passes.h"
#include "core/mapped_file.h"
#include "core/threadpool.h"
#include "format/sparsedge_format.h"
#include "ops/op.h"

namespace sde {

// Everything that depends on the input shapes, computed once per shape set:
// every value's dtype and shape, the values known before running (shape
// arithmetic), where each run-time value lives in one arena, and how much
// scratch the largest op needs.
struct Plan {
  std::vector<ValueMeta> metas;
  std::vector<Tensor> tensors;       // views into `arena` (or constants)
  std::vector<size_t> run_nodes;     // nodes still to execute at run time
  std::vector<std::vector<const Tensor*>> node_in;
  std::vector<std::vector<Tensor*>> node_out;
  std::shared_ptr<void> arena;
  size_t arena_bytes = 0;
  void* scratch = nullptr;
  // What placement needs and what reuse compares (see Session::reserve).
  std::vector<bool> runs;            // per node: executed at run time
  std::vector<int> bound;            // output value ids bound by the caller (sorted)
  std::vector<size_t> sizes;         // arena bytes per value (0 = not in the arena)
  std::vector<size_t> offsets;       // arena offset per value with sizes[v] > 0
  std::vector<size_t> first, last;   // lifetimes (node indices) of run-time values
  size_t scratch_bytes = 0;          // largest scratch need (this plan's shapes)
  size_t scratch_capacity = 0;       // scratch room in the arena
};

namespace {

constexpr int64_t kMinOpset = 7;
constexpr int64_t kMaxOpset = 24;

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

std::vector<int> sorted_union(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  a.erase(std::unique(a.begin(), a.end()), a.end());
  return a;
}

std::string describe_input(const ValueInfo& vi) {
  std::string s = "'" + vi.name + "' (" + dtype_name(vi.dtype);
  if (vi.has_shape) {
    s += " [";
    for (size_t i = 0; i < vi.dims.size(); ++i) {
      if (i) s += ", ";
      s += vi.dims[i].value >= 0 ? std::to_string(vi.dims[i].value)
                                 : (vi.dims[i].param.empty() ? "?" : vi.dims[i].param);
    }
    s += "]";
  }
  return s + ")";
}

}  // namespace

std::unique_ptr<Session> Session::from_file(const std::string& path, const SessionOptions& options) {
  Model m = load_model_file(path);
  try {
    return std::make_unique<Session>(std::move(m), options);
  } catch (const Error& e) {
    throw Error(e.code(), std::string(e.what()) + " (model '" + path + "')");
  }
}

std::unique_ptr<Session> Session::from_bytes(const uint8_t* data, size_t size,
                                             const SessionOptions& options) {
  return std::make_unique<Session>(load_model_bytes(data, size), options);
}

Session::Session(Model model, const SessionOptions& options) : options_(options) {
  if (options_.threads == 0) fail(StatusCode::kInvalidArgument, "threads must be at least 1");
  if (options_.threads > 256) fail(StatusCode::kInvalidArgument, "threads must be at most 256");
  pool_ = std::make_unique<ThreadPool>(options_.threads);
  if (options_.isa.empty()) {
    kernels_ = kernels();
  } else {
    Isa isa = Isa::kScalar;
    bool known = false;
    for (Isa candidate : {Isa::kScalar, Isa::kSse2, Isa::kAvx2, Isa::kAvx512f, Isa::kNeon, Isa::kWasmSimd}) {
      if (options_.isa == isa_name(candidate)) isa = candidate, known = true;
    }
    if (!known) fail(StatusCode::kInvalidArgument, "unknown ISA '", options_.isa, "' (use scalar, sse2, avx2, avx512f, neon or wasmsimd)");
    if (!isa_supported(isa)) fail(StatusCode::kInvalidArgument, "ISA '", options_.isa, "' is not supported on this CPU or build");
    kernels_ = kernels_for(isa);
  }
  metadata_ = model.metadata;
  compile(model);
}

Session::~Session() = default;

size_t Session::threads() const { return pool_->threads(); }

int Session::value_id(const std::string& name) {
  auto it = value_ids_.find(name);
  if (it != value_ids_.end()) return it->second;
  int id = static_cast<int>(values_.size());
  values_.push_back(Value{name, Tensor(), -1});
  value_ids_[name] = id;
  return id;
}

void Session::compile(Model& model) {
  // Operator sets.
  auto onnx = model.opsets.find("");
  if (onnx == model.opsets.end()) {
    fail(StatusCode::kInvalidModel, "the model does not import the standard ONNX operator set");
  }
  if (onnx->second < kMinOpset || onnx->second > kMaxOpset) {
    fail(StatusCode::kUnsupported, "ONNX opset ", onnx->second, " is not supported (supported: ",
         kMinOpset, " to ", kMaxOpset, ")");
  }
  // Other unknown domains only matter if a node uses them (checked below).
  auto custom = model.opsets.find(format::kDomain);
  if (custom != model.opsets.end() && custom->second != format::kDomainVersion) {
    fail(StatusCode::kUnsupported, "the model uses ", format::kDomain, " version ", custom->second,
         "; this runtime reads version ", format::kDomainVersion);
  }

  Graph& g = model.graph;
  ConstantMap consts = g.initializers;
  std::set<std::string> defined;
  for (const auto& kv : consts) defined.insert(kv.first);
  for (const ValueInfo& vi : g.inputs) {
    if (consts.count(vi.name)) continue;  // an initializer with a default: a constant here
    if (vi.dtype == DType::kUndefined) {
      fail(StatusCode::kUnsupported, "graph input '", vi.name, "' is not a tensor");
    }
    if (!dtype_known(static_cast<int32_t>(vi.dtype))) {
      fail(StatusCode::kUnsupported, "graph input '", vi.name, "' has an unsupported element type");
    }
    inputs_.push_back(vi);
    defined.insert(vi.name);
  }
  if (g.outputs.empty()) fail(StatusCode::kInvalidModel, "the graph has no outputs");
  std::set<std::string> graph_outputs;
  for (const ValueInfo& vi : g.outputs) graph_outputs.insert(vi.name);
  outputs_ = g.outputs;

  std::vector<Node> nodes = topological_sort(g.nodes, defined);
  for (Node& n : nodes) {
    if (!n.domain.empty()) continue;
    Attribute a;  // ops whose semantics changed across opsets read this
    a.name = "_sde_opset";
    a.type = Attribute::kInt;
    a.i = onnx->second;
    n.attributes.push_back(a);
  }
  for (const std::string& o : graph_outputs) {
    bool produced = defined.count(o) > 0;
    for (const Node& n : nodes) {
      produced = produced || std::find(n.outputs.begin(), n.outputs.end(), o) != n.outputs.end();
    }
    if (!produced) fail(StatusCode::kInvalidModel, "graph output '", o, "' is not produced by any node");
  }

  // Every node must be an op we know, before any work is done.
  const OpRegistry& registry = OpRegistry::instance();
  for (const Node& n : nodes) {
    if (!n.domain.empty() && !model.opsets.count(n.domain)) {
      fail(StatusCode::kInvalidModel, n.describe(), " uses domain '", n.domain,
           "', which the model does not import");
    }
    if (registry.find(n.domain, n.op_type) == nullptr) {
      fail(StatusCode::kUnsupported, "unsupported operator '", n.op_type, "'",
           n.domain.empty() ? std::string() : " (domain '" + n.domain + "')", " in ", n.describe(),
           "; see docs/OPERATORS.md for the supported set");
    }
    for (const Attribute& a : n.attributes) {
      if (a.has_graph) {
        fail(StatusCode::kUnsupported, n.describe(), ": attribute '", a.name,
             "' holds a subgraph; control flow is not supported");
      }
    }
  }

  OpContext lookup;
  lookup.lookup = [&consts](const std::string& name) -> const Tensor* {
    auto it = consts.find(name);
    return it == consts.end() ? nullptr : &it->second;
  };
  lookup.kernels = &kernels_;

  if (options_.optimize) {
    remove_identities(nodes, graph_outputs);
    // Constant folding: a node whose inputs are all known is evaluated now.
    std::vector<Node> remaining;
    for (const Node& n : nodes) {
      bool all_const = true;
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        if (n.has_input(i) && !consts.count(n.inputs[i])) all_const = false;
      }
      std::unique_ptr<Op> op = all_const ? (*registry.find(n.domain, n.op_type))(n, lookup) : nullptr;
      if (!op || !op->foldable()) {
        remaining.push_back(n);
        continue;
      }
      std::vector<const ValueMeta*> in_meta;
      std::vector<ValueMeta> metas(n.inputs.size());
      std::vector<const Tensor*> in_t;
      for (size_t i = 0; i < n.inputs.size(); ++i) {
        if (!n.has_input(i)) {
          in_meta.push_back(nullptr);
          in_t.push_back(nullptr);
          continue;
        }
        const Tensor& t = consts[n.inputs[i]];
        metas[i] = ValueMeta{t.dtype, t.shape, t};
        in_meta.push_back(&metas[i]);
        in_t.push_back(&t);
      }
      std::vector<ValueMeta> out_meta(n.outputs.size());
      op->infer(in_meta, out_meta);
      std::vector<Tensor> outs;
      RunArgs args;
      args.in = in_t;
      for (size_t j = 0; j < n.outputs.size(); ++j) {
        outs.push_back(out_meta[j].is_constant() ? out_meta[j].constant
                                                 : Tensor::allocate(out_meta[j].dtype, out_meta[j].shape));
      }
      for (Tensor& t : outs) args.out.push_back(&t);
      size_t scratch = op->scratch_bytes(in_meta, 1);
      std::shared_ptr<void> scratch_mem(aligned_alloc_bytes(scratch), aligned_free);
      args.scratch = scratch_mem.get();
      bool already = true;
      for (auto& m : out_meta) already = already && m.is_constant();
      if (!already) op->run(args);
      for (size_t j = 0; j < n.outputs.size(); ++j) {
        if (!n.outputs[j].empty()) consts[n.outputs[j]] = outs[j];
      }
    }
    nodes.swap(remaining);
    fold_batchnorm_into_conv(nodes, consts, graph_outputs);
    fuse_activations(nodes, consts, graph_outputs);
    remove_dead_nodes(nodes, graph_outputs);
  }

  // Values: graph inputs first, then constants that are used, then outputs.
  for (size_t i = 0; i < inputs_.size(); ++i) values_[value_id(inputs_[i].name)].graph_input = static_cast<int>(i);
  for (const Node& n : nodes) {
    CompiledNode cn;
    cn.op = (*registry.find(n.domain, n.op_type))(n, lookup);
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      if (!n.has_input(i)) {
        cn.inputs.push_back(-1);
        continue;
      }
      int id = value_id(n.inputs[i]);
      auto c = consts.find(n.inputs[i]);
      if (c != consts.end()) values_[id].constant = c->second;
      cn.inputs.push_back(id);
    }
    for (const std::string& o : n.outputs) cn.outputs.push_back(o.empty() ? -1 : value_id(o));
    // The op has packed what it needs from its constant inputs: let the
    // mapped originals leave memory (read back from the page cache if an op
    // still reads them).
    release_constants(cn);
    nodes_.push_back(std::move(cn));
  }
  for (const ValueInfo& vi : outputs_) {
    int id = value_id(vi.name);
    auto c = consts.find(vi.name);
    if (c != consts.end()) values_[id].constant = c->second;
    output_ids_.push_back(id);
  }
}

std::vector<NodeSummary> Session::nodes() const {
  std::vector<NodeSummary> out;
  for (const CompiledNode& cn : nodes_) {
    NodeSummary s;
    const Node& n = cn.op->node();
    s.name = n.name;
    s.op_type = n.op_type;
    s.domain = n.domain;
    s.kernel = cn.op->kernel_name();
    s.inputs = n.inputs;
    s.outputs = n.outputs;
    out.push_back(s);
  }
  return out;
}

std::map<std::string, double> Session::stats() const {
  std::map<std::string, double> out;
  for (const CompiledNode& cn : nodes_) cn.op->add_stats(out);
  out["session.plans_placed"] = static_cast<double>(plans_placed_);
  out["session.plans_reused"] = static_cast<double>(plans_reused_);
  return out;
}

void Session::reset_stats() {
  for (CompiledNode& cn : nodes_) cn.op->reset_stats();
  plans_placed_ = plans_reused_ = 0;
}

// Large mapped constant inputs of `cn` leave memory (madvise; they are read
// back from the page cache if an op still reads them).
void Session::release_constants(const CompiledNode& cn) const {
  for (int id : cn.inputs) {
    if (id < 0) continue;
    const Tensor& c = values_[id].constant;
    if (c.defined() && c.bytes() >= (size_t(1) << 16)) release_mapped_pages(c.data, c.bytes());
  }
}

std::unique_ptr<Plan> Session::infer_plan(const std::vector<Shape>& input_shapes,
                                          const std::vector<int>& bound_ids, const std::vector<int>& needed_ids) {
  auto plan = std::make_unique<Plan>();
  const size_t nv = values_.size();
  plan->bound = bound_ids;
  plan->metas.resize(nv);
  for (size_t v = 0; v < nv; ++v) {
    const Value& val = values_[v];
    if (val.constant.defined()) {
      plan->metas[v] = ValueMeta{val.constant.dtype, val.constant.shape, val.constant};
    } else if (val.graph_input >= 0) {
      plan->metas[v].dtype = inputs_[val.graph_input].dtype;
      plan->metas[v].shape = input_shapes[val.graph_input];
    }
  }
  // Shape inference; nodes whose inputs are all known are evaluated now.
  plan->runs.assign(nodes_.size(), true);
  size_t scratch = 0;
  std::vector<const ValueMeta*> in;
  std::vector<ValueMeta> out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    CompiledNode& cn = nodes_[i];
    in.clear();
    bool all_known = true;
    for (int id : cn.inputs) {
      in.push_back(id < 0 ? nullptr : &plan->metas[id]);
      if (id >= 0 && !plan->metas[id].is_constant()) all_known = false;
    }
    out.assign(cn.outputs.size(), ValueMeta());
    cn.op->infer(in, out);
    // Some ops pack their constants at the first shape inference (they need
    // the input's feature count): let the mapped originals leave memory again
    // now, node by node, so that the load peak holds one layer twice, not all.
    if (!constants_released_) release_constants(cn);
    bool outputs_known = true;
    for (auto& m : out) outputs_known = outputs_known && m.is_constant();
    if (all_known && cn.op->foldable() && !outputs_known) {
      RunArgs args;
      for (int id : cn.inputs) args.in.push_back(id < 0 ? nullptr : &plan->metas[id].constant);
      for (auto& m : out) {
        m.constant = Tensor::allocate(m.dtype, m.shape);
        args.out.push_back(&m.constant);
      }
      std::shared_ptr<void> s(aligned_alloc_bytes(cn.op->scratch_bytes(in, 1)), aligned_free);
      args.scratch = s.get();
      cn.op->run(args);
      outputs_known = true;
    }
    if (outputs_known) plan->runs[i] = false;
    else scratch = std::max(scratch, cn.op->scratch_bytes(in, pool_->threads()));
    for (size_t j = 0; j < cn.outputs.size(); ++j) {
      if (cn.outputs[j] >= 0) plan->metas[cn.outputs[j]] = out[j];
    }
  }
  plan->scratch_bytes = align_up(scratch, 64);
  // Run only what the needed outputs depend on (walking back from them).
  std::vector<char> need(nv, 0);
  for (int id : needed_ids) need[id] = 1;
  for (size_t i = nodes_.size(); i-- > 0;) {
    if (!plan->runs[i]) continue;
    bool used = false;
    for (int id : nodes_[i].outputs) used = used || (id >= 0 && need[id]);
    if (!used) {
      plan->runs[i] = false;
      continue;
    }
    for (int id : nodes_[i].inputs) {
      if (id >= 0) need[id] = 1;
    }
  }

  // Lifetimes of run-time values (produced by a node that runs).
  const size_t kForever = nodes_.size() + 1;
  plan->first.assign(nv, SIZE_MAX);
  plan->last.assign(nv, 0);
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!plan->runs[i]) continue;
    for (int id : nodes_[i].outputs) {
      if (id >= 0 && plan->first[id] == SIZE_MAX) plan->first[id] = i, plan->last[id] = i;
    }
    for (int id : nodes_[i].inputs) {
      if (id >= 0) plan->last[id] = std::max(plan->last[id], i);
    }
  }
  for (int id : output_ids_) plan->last[id] = kForever;
  plan->sizes.assign(nv, 0);
  for (size_t v = 0; v < nv; ++v) {
    const ValueMeta& m = plan->metas[v];
    if (plan->first[v] == SIZE_MAX || m.is_constant()) continue;
    if (std::binary_search(bound_ids.begin(), bound_ids.end(), static_cast<int>(v))) continue;  // caller's memory
    plan->sizes[v] = align_up(std::max<size_t>(static_cast<size_t>(m.shape.empty() ? 1 : shape_numel(m.shape)) *
                                                   std::max<size_t>(dtype_size(m.dtype), 1), 1), 64);
  }
  for (int id : bound_ids) {
    if (plan->metas[id].is_constant() || plan->first[id] == SIZE_MAX) {
      fail(StatusCode::kInvalidArgument, "output '", values_[id].name,
           "' cannot be bound: it is not computed at run time for these input shapes");
    }
  }
  inferred_plan_ = plan.get();
  constants_released_ = true;
  return plan;
}

// Greedy by size: place the largest buffers first at the lowest offset that
// does not overlap a placed buffer alive at the same time.
void Session::place(Plan& plan) {
  const size_t nv = values_.size();
  struct Placed { size_t offset, size, first, last; };
  std::vector<size_t> order;
  for (size_t v = 0; v < nv; ++v) {
    if (plan.sizes[v] > 0) order.push_back(v);
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return plan.sizes[a] > plan.sizes[b]; });
  std::vector<Placed> placed;
  plan.offsets.assign(nv, 0);
  size_t total = 0;
  std::vector<std::pair<size_t, size_t>> busy;
  for (size_t v : order) {
    busy.clear();
    for (const Placed& p : placed) {
      if (p.first <= plan.last[v] && plan.first[v] <= p.last) busy.push_back({p.offset, p.offset + p.size});
    }
    std::sort(busy.begin(), busy.end());
    size_t offset = 0;
    for (const auto& b : busy) {
      if (offset + plan.sizes[v] <= b.first) break;
      offset = std::max(offset, b.second);
    }
    plan.offsets[v] = offset;
    placed.push_back({offset, plan.sizes[v], plan.first[v], plan.last[v]});
    total = std::max(total, offset + plan.sizes[v]);
  }
  const size_t scratch_offset = align_up(total, 64);
  plan.scratch_capacity = plan.scratch_bytes;
  plan.arena_bytes = scratch_offset + plan.scratch_capacity + 64;
  plan.arena = std::shared_ptr<void>(aligned_alloc_bytes(plan.arena_bytes), aligned_free);
  std::memset(plan.arena.get(), 0, plan.arena_bytes);
  plan.scratch = static_cast<char*>(plan.arena.get()) + scratch_offset;
}

// May `plan` run in `reserved`'s arena? A subset of its executed nodes, the
// same bound outputs, and every buffer no larger.
bool Session::fits(const Plan& plan, const Plan& reserved) const {
  if (plan.bound != reserved.bound) return false;
  // A subset of the reserved nodes: every value then lives within its reserved
  // lifetime, so the reserved offsets cannot overlap.
  for (size_t i = 0; i < plan.runs.size(); ++i) {
    if (plan.runs[i] && !reserved.runs[i]) return false;
  }
  if (plan.scratch_bytes > reserved.scratch_capacity) return false;
  for (size_t v = 0; v < plan.sizes.size(); ++v) {
    if (plan.sizes[v] == 0) continue;
    if (reserved.sizes[v] < plan.sizes[v]) return false;
  }
  return true;
}

// Tensor views of every value at its offset, and the per-node argument lists.
void Session::make_views(Plan& plan) const {
  const size_t nv = plan.metas.size();
  char* base = static_cast<char*>(plan.arena.get());
  plan.tensors.assign(nv, Tensor());
  for (size_t v = 0; v < nv; ++v) {
    const ValueMeta& m = plan.metas[v];
    if (m.is_constant()) plan.tensors[v] = m.constant;
    else if (plan.sizes[v] > 0) plan.tensors[v] = Tensor::view(m.dtype, m.shape, base + plan.offsets[v]);
    else plan.tensors[v] = Tensor::view(m.dtype, m.shape, nullptr);  // graph input or bound output: per run
  }
  plan.run_nodes.clear();
  plan.node_in.clear();
  plan.node_out.clear();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!plan.runs[i]) continue;
    plan.run_nodes.push_back(i);
    std::vector<const Tensor*> in;
    std::vector<Tensor*> out;
    for (int id : nodes_[i].inputs) in.push_back(id < 0 ? nullptr : &plan.tensors[id]);
    for (int id : nodes_[i].outputs) out.push_back(id < 0 ? nullptr : &plan.tensors[id]);
    plan.node_in.push_back(std::move(in));
    plan.node_out.push_back(std::move(out));
  }
}

void Session::reinfer(const Plan& plan) {
  if (inferred_plan_ == &plan) return;
  // Ops cache shape-dependent state (GEMM sizes, slice offsets...) in
  // infer(); another shape set was planned since, so restore theirs.
  std::vector<const ValueMeta*> in;
  std::vector<ValueMeta> out;
  for (CompiledNode& cn : nodes_) {
    in.clear();
    for (int id : cn.inputs) in.push_back(id < 0 ? nullptr : &plan.metas[id]);
    out.assign(cn.outputs.size(), ValueMeta());
    cn.op->infer(in, out);
  }
  inferred_plan_ = &plan;
}

const Plan& Session::plan_for(const std::vector<Shape>& input_shapes, const std::vector<int>& bound_ids,
                              const std::vector<int>& needed_ids) {
  PlanKey key{input_shapes, bound_ids, needed_ids};
  auto it = plans_.find(key);
  if (it != plans_.end()) {
    reinfer(*it->second);
    return *it->second;
  }
  std::unique_ptr<Plan> plan = infer_plan(input_shapes, bound_ids, needed_ids);
  if (reserved_ && fits(*plan, *reserved_)) {
    // Borrow the reserved arena: same offsets, this run's shapes.
    plan->offsets = reserved_->offsets;
    plan->arena = reserved_->arena;
    plan->arena_bytes = reserved_->arena_bytes;
    plan->scratch = reserved_->scratch;
    plan->scratch_capacity = reserved_->scratch_capacity;
    make_views(*plan);
    ++plans_reused_;
    transient_ = std::move(plan);
    inferred_plan_ = transient_.get();
    return *transient_;
  }
  place(*plan);
  make_views(*plan);
  ++plans_placed_;
  if (plans_.size() >= 8) {
    plans_.clear();  // bound memory for shape-varying callers
    transient_.reset();
  }
  Plan* raw = plan.get();
  plans_.emplace(std::move(key), std::move(plan));
  inferred_plan_ = raw;
  return *raw;
}

void Session::reserve(const std::vector<std::pair<std::string, Shape>>& input_shapes,
                      const std::vector<std::string>& bound_outputs) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  std::vector<Shape> shapes(inputs_.size());
  std::vector<bool> seen(inputs_.size(), false);
  for (const auto& kv : input_shapes) {
    size_t idx = inputs_.size();
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (inputs_[i].name == kv.first) idx = i;
    }
    if (idx == inputs_.size()) fail(StatusCode::kInvalidArgument, "reserve: unknown input '", kv.first, "'");
    for (int64_t d : kv.second) {
      if (d < 0) fail(StatusCode::kInvalidArgument, "reserve: input '", kv.first, "' has a negative dimension");
    }
    shapes[idx] = kv.second;
    seen[idx] = true;
  }
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (!seen[i]) fail(StatusCode::kInvalidArgument, "reserve: missing input ", describe_input(inputs_[i]));
  }
  std::vector<int> bound_ids = output_ids(bound_outputs);
  std::sort(bound_ids.begin(), bound_ids.end());
  transient_.reset();
  reserved_.reset();
  std::unique_ptr<Plan> plan = infer_plan(shapes, bound_ids, sorted_union(output_ids_, bound_ids));
  place(*plan);
  make_views(*plan);
  reserved_ = std::move(plan);
  inferred_plan_ = reserved_.get();
}

size_t Session::reserved_bytes() const { return reserved_ ? reserved_->arena_bytes : 0; }

std::vector<int> Session::output_ids(const std::vector<std::string>& names) const {
  std::vector<int> ids;
  for (const std::string& name : names) {
    int id = -1;
    for (size_t j = 0; j < outputs_.size(); ++j) {
      if (outputs_[j].name == name) id = output_ids_[j];
    }
    if (id < 0) {
      std::string known;
      for (const ValueInfo& vi : outputs_) known += (known.empty() ? "'" : ", '") + vi.name + "'";
      fail(StatusCode::kInvalidArgument, "unknown output '", name, "'; the model's outputs are: ", known);
    }
    ids.push_back(id);
  }
  return ids;
}

std::vector<const Tensor*> Session::bind_inputs(const std::vector<std::pair<std::string, Tensor>>& feeds) {
  // Match feeds to inputs and check them against the declared types.
  std::vector<const Tensor*> bound(inputs_.size(), nullptr);
  for (const auto& feed : feeds) {
    size_t idx = inputs_.size();
    for (size_t i = 0; i < inputs_.size(); ++i) {
      if (inputs_[i].name == feed.first) idx = i;
    }
    if (idx == inputs_.size()) {
      std::string known;
      for (const ValueInfo& vi : inputs_) known += (known.empty() ? "" : ", ") + describe_input(vi);
      fail(StatusCode::kInvalidArgument, "unknown input '", feed.first, "'; the model's inputs are: ", known);
    }
    if (bound[idx]) fail(StatusCode::kInvalidArgument, "input '", feed.first, "' is given twice");
    const ValueInfo& vi = inputs_[idx];
    const Tensor& t = feed.second;
    if (t.dtype != vi.dtype) {
      fail(StatusCode::kInvalidArgument, "input '", vi.name, "' has element type ", dtype_name(t.dtype),
           " but the model expects ", dtype_name(vi.dtype));
    }
    if (vi.has_shape) {
      bool ok = t.shape.size() == vi.dims.size();
      for (size_t d = 0; ok && d < vi.dims.size(); ++d) {
        if (vi.dims[d].value >= 0 && vi.dims[d].value != t.shape[d]) ok = false;
      }
      if (!ok) {
        fail(StatusCode::kInvalidArgument, "input '", vi.name, "' has shape ", shape_str(t.shape),
             " but the model expects ", describe_input(vi));
      }
    }
    for (int64_t d : t.shape) {
      if (d < 0) fail(StatusCode::kInvalidArgument, "input '", vi.name, "' has a negative dimension");
    }
    if (t.data == nullptr && t.numel() > 0) {
      fail(StatusCode::kInvalidArgument, "input '", vi.name, "' has no data");
    }
    bound[idx] = &t;
  }
  for (size_t i = 0; i < inputs_.size(); ++i) {
    if (!bound[i]) fail(StatusCode::kInvalidArgument, "missing input ", describe_input(inputs_[i]));
  }
  return bound;
}

std::vector<Tensor> Session::run(const std::vector<std::pair<std::string, Tensor>>& feeds,
                                 const std::vector<std::string>& output_names) {
  return run(feeds, output_names, {});
}

std::vector<Tensor> Session::run(const std::vector<std::pair<std::string, Tensor>>& feeds,
                                 const std::vector<std::string>& output_names,
                                 const std::vector<std::pair<std::string, Tensor>>& bound_outputs) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  std::vector<const Tensor*> bound = bind_inputs(feeds);
  std::vector<Shape> shapes;
  for (size_t i = 0; i < inputs_.size(); ++i) shapes.push_back(bound[i]->shape);
  std::vector<int> wanted = output_names.empty() ? output_ids_ : output_ids(output_names);
  std::vector<std::string> bound_names;
  for (const auto& b : bound_outputs) bound_names.push_back(b.first);
  std::vector<int> bound_ids = output_ids(bound_names);
  std::vector<std::pair<int, const Tensor*>> bound_by_id;
  for (size_t i = 0; i < bound_ids.size(); ++i) bound_by_id.push_back({bound_ids[i], &bound_outputs[i].second});
  std::sort(bound_by_id.begin(), bound_by_id.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < bound_by_id.size(); ++i) {
    if (bound_by_id[i].first == bound_by_id[i - 1].first) {
      fail(StatusCode::kInvalidArgument, "output '", values_[bound_by_id[i].first].name, "' is bound twice");
    }
  }
  std::sort(bound_ids.begin(), bound_ids.end());
  const Plan& plan = plan_for(shapes, bound_ids, sorted_union(wanted, bound_ids));
  std::vector<Tensor>& tensors = const_cast<Plan&>(plan).tensors;
  for (const auto& b : bound_by_id) {
    const Tensor& dst = *b.second;
    const ValueMeta& m = plan.metas[b.first];
    if (dst.dtype != m.dtype || dst.shape != m.shape) {
      fail(StatusCode::kInvalidArgument, "bound output '", values_[b.first].name, "' is ", dtype_name(dst.dtype), " ",
           shape_str(dst.shape), " but these inputs produce ", dtype_name(m.dtype), " ", shape_str(m.shape));
    }
    if (dst.data == nullptr && dst.numel() > 0) {
      fail(StatusCode::kInvalidArgument, "bound output '", values_[b.first].name, "' has no data");
    }
    tensors[b.first].data = dst.data;
  }
  // Bind graph inputs (by pointer: they are read, never written).
  for (size_t i = 0; i < inputs_.size(); ++i) {
    int id = value_ids_.at(inputs_[i].name);
    tensors[id].data = bound[i]->data;
  }
  RunArgs args;
  args.scratch = plan.scratch;
  args.pool = pool_.get();
  for (size_t k = 0; k < plan.run_nodes.size(); ++k) {
    args.in = plan.node_in[k];
    args.out = plan.node_out[k];
    nodes_[plan.run_nodes[k]].op->run(args);
  }
  std::vector<Tensor> results;
  for (int id : wanted) results.push_back(tensors[id]);
  return results;
}

}  // namespace sde
