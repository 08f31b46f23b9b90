// A loaded, optimised model ready to run: the object every face wraps.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "core/model.h"
#include "core/tensor.h"
#include "kernels/kernels.h"

namespace sde {

class Op;
class ThreadPool;
struct Plan;

struct SessionOptions {
  size_t threads = 1;
  bool optimize = true;  // constant folding and fusions (off only for debugging)
  std::string isa;       // "" = the start-up choice; else "scalar", "avx2", ... (tests, bisecting)
};

// One line per executed node, for `sparsedge inspect` and tests.
struct NodeSummary {
  std::string name, op_type, domain, kernel;
  std::vector<std::string> inputs, outputs;
};

class Session {
 public:
  static std::unique_ptr<Session> from_file(const std::string& path, const SessionOptions& options);
  static std::unique_ptr<Session> from_bytes(const uint8_t* data, size_t size,
                                             const SessionOptions& options);
  Session(Model model, const SessionOptions& options);
  ~Session();

  const std::vector<ValueInfo>& inputs() const { return inputs_; }
  const std::vector<ValueInfo>& outputs() const { return outputs_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::vector<NodeSummary> nodes() const;
  // Counters kept by ops across runs (Op::add_stats), summed over nodes by key,
  // plus the session's own: session.plans_placed (arena layouts computed) and
  // session.plans_reused (runs that borrowed the reserved layout).
  std::map<std::string, double> stats() const;
  void reset_stats();
  size_t threads() const;

  // Runs the model. `feeds` pairs input names with tensors (never modified).
  // Returns the requested outputs (all when `output_names` is empty) as views
  // into the session's memory, valid until the next run() or destruction.
  // Not thread-safe for concurrent runs on one session (it serialises them).
  std::vector<Tensor> run(const std::vector<std::pair<std::string, Tensor>>& feeds,
                          const std::vector<std::string>& output_names);

  // Output binding: like run(), but each output named in `bound` is written
  // straight into the caller's tensor, whose dtype and shape must equal the
  // output's (checked). Bound outputs take no arena space. A bound output may
  // share memory with an input only where the producing op allows it (an LLM
  // KV cache: CausalAttention's present may alias its past for batch 1).
  // Only the nodes that the requested and bound outputs depend on run: an LLM
  // prefill chunk that asks for its KV cache alone skips the LM head.
  std::vector<Tensor> run(const std::vector<std::pair<std::string, Tensor>>& feeds,
                          const std::vector<std::string>& output_names,
                          const std::vector<std::pair<std::string, Tensor>>& bound);

  // Plans once for the largest input shapes a caller will use (e.g. a prefill
  // chunk over a full KV cache) with the given outputs bound. Later runs whose
  // every buffer fits that plan's arena, with the same nodes executed, reuse
  // it: shapes are re-inferred (cheap) but nothing is placed or allocated, so
  // a growing sequence (one more KV position per token) costs no planning.
  // The reservation computes every output; runs asking for fewer (a subset of
  // its nodes) reuse it too.
  void reserve(const std::vector<std::pair<std::string, Shape>>& input_shapes,
               const std::vector<std::string>& bound_outputs);
  // Bytes of the arena (activations + scratch) of the reserved plan, 0 if none.
  size_t reserved_bytes() const;

 private:
  struct CompiledNode {
    std::unique_ptr<Op> op;
    std::vector<int> inputs;   // value ids, -1 for omitted
    std::vector<int> outputs;  // value ids
  };
  struct Value {
    std::string name;
    Tensor constant;  // defined for initializers and folded values
    int graph_input = -1;
  };

  void compile(Model& model);
  void release_constants(const CompiledNode& cn) const;
  int value_id(const std::string& name);
  // Input shapes, bound output ids, needed output ids (requested or bound), all sorted.
  using PlanKey = std::tuple<std::vector<Shape>, std::vector<int>, std::vector<int>>;
  const Plan& plan_for(const std::vector<Shape>& input_shapes, const std::vector<int>& bound_ids,
                       const std::vector<int>& needed_ids);
  std::unique_ptr<Plan> infer_plan(const std::vector<Shape>& input_shapes, const std::vector<int>& bound_ids,
                                   const std::vector<int>& needed_ids);
  void place(Plan& plan);
  void make_views(Plan& plan) const;
  bool fits(const Plan& plan, const Plan& reserved) const;
  void reinfer(const Plan& plan);
  std::vector<const Tensor*> bind_inputs(const std::vector<std::pair<std::string, Tensor>>& feeds);
  std::vector<int> output_ids(const std::vector<std::string>& names) const;

  SessionOptions options_;
  std::vector<ValueInfo> inputs_, outputs_;
  std::map<std::string, std::string> metadata_;
  std::vector<Value> values_;
  std::map<std::string, int> value_ids_;
  std::vector<CompiledNode> nodes_;
  std::vector<int> output_ids_;
  std::unique_ptr<ThreadPool> pool_;
  KernelTable kernels_;
  std::map<PlanKey, std::unique_ptr<Plan>> plans_;
  std::unique_ptr<Plan> reserved_;   // see reserve()
  std::unique_ptr<Plan> transient_;  // the last plan that borrowed reserved_'s arena
  // Ops keep shape-dependent state from infer(); the plan it was last run for.
  const Plan* inferred_plan_ = nullptr;
  size_t plans_placed_ = 0, plans_reused_ = 0;  // counters for stats()
  bool constants_released_ = false;  // mapped constants released again after the first shape inference
  std::mutex run_mutex_;
};

}  // namespace sde
