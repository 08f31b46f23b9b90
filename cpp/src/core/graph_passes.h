// Load-time rewrites of the node list, applied in this order by Session:
// validation + topological sort, identity removal, BatchNorm folding,
// activation fusion. Constant folding is in session.cc since it runs ops.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/model.h"

namespace sde {

using ConstantMap = std::map<std::string, Tensor>;

// Checks that every node input is defined and that the graph is acyclic, and
// returns the nodes in execution order. Throws kInvalidModel naming the node.
std::vector<Node> topological_sort(const std::vector<Node>& nodes, const std::set<std::string>& defined);

// Identity and inference-mode Dropout become nothing: consumers read the
// producer's value. Identities feeding graph outputs are kept.
void remove_identities(std::vector<Node>& nodes, const std::set<std::string>& graph_outputs);

// Conv -> BatchNormalization with constant parameters becomes one Conv.
void fold_batchnorm_into_conv(std::vector<Node>& nodes, ConstantMap& consts,
                              const std::set<std::string>& graph_outputs);

// Conv/Gemm/MatMul -> Relu / Clip(constant bounds) becomes a Conv with a
// fused clamp (kFusedMinAttr / kFusedMaxAttr).
void fuse_activations(std::vector<Node>& nodes, const ConstantMap& consts,
                      const std::set<std::string>& graph_outputs);

// Drops nodes whose outputs reach no graph output.
void remove_dead_nodes(std::vector<Node>& nodes, const std::set<std::string>& graph_outputs);

}  // namespace sde
