// The sparsedge model format, C++ side. Mirrored by
// exporters/sparsedge_export/format.py; docs/FORMAT.md specifies both, and
// tests/python/test_format.py writes a model in Python and reads it here.
#pragma once

#include <cstdint>

namespace sde {
namespace format {

constexpr const char* kDomain = "ai.sparsedge";
constexpr int64_t kDomainVersion = 1;
constexpr int64_t kFormatVersion = 1;
constexpr int64_t kIrVersion = 10;
constexpr int64_t kOnnxOpset = 17;

// Op types.
constexpr const char* kGroupSparseConv = "GroupSparseConv";
constexpr const char* kGroupSparseMatMul = "GroupSparseMatMul";

// Input positions shared by both ops.
enum GroupSparseInput : int { kInputX = 0, kInputValues = 1, kInputColIndices = 2, kInputRowPtr = 3, kInputBias = 4 };

// Attribute names.
constexpr const char* kAttrBlockSize = "block_size";
constexpr const char* kAttrOutChannels = "out_channels";
constexpr const char* kAttrKernelShape = "kernel_shape";
constexpr const char* kAttrStrides = "strides";
constexpr const char* kAttrPads = "pads";
constexpr const char* kAttrDilations = "dilations";
constexpr const char* kAttrActivationMin = "activation_min";
constexpr const char* kAttrActivationMax = "activation_max";

// Block sizes (output channels per block) the format allows.
constexpr int64_t kBlockSizes[] = {1, 2, 4, 8};
inline bool valid_block_size(int64_t b) { return b == 1 || b == 2 || b == 4 || b == 8; }

// The "no activation" clamp bound (float max; ONNX attributes avoid inf).
constexpr float kNoClamp = 3.4028234663852886e38f;

// metadata_props keys.
constexpr const char* kMetaFormatVersion = "sparsedge.format_version";
constexpr const char* kMetaExport = "sparsedge.export";

// LLM decoder ops (docs/FORMAT.md, "LLM decoder ops").
constexpr const char* kRmsNorm = "RMSNorm";                   // (x, weight) -> y
constexpr const char* kRotaryEmbedding = "RotaryEmbedding";   // (x [B,T,H,D], position_ids [B,T]) -> y
constexpr const char* kCausalAttention = "CausalAttention";   // (q, k, v, past_k, past_v) -> (out, present_k, present_v)

constexpr const char* kAttrEpsilon = "epsilon";
constexpr const char* kAttrBase = "base";
constexpr const char* kAttrInterleaved = "interleaved";
constexpr const char* kAttrNumHeads = "num_heads";
constexpr const char* kAttrKvHeads = "kv_heads";
constexpr const char* kAttrScale = "scale";
// CausalAttention temporal-delta attention (docs/DELTA_ATTENTION.md); absent or window 0 = dense.
constexpr const char* kAttrDeltaWindow = "delta_window";              // int >= 0
constexpr const char* kAttrDeltaQThresholds = "delta_q_thresholds";  // floats [num_heads], >= 0, finite
constexpr const char* kAttrDeltaPThreshold = "delta_p_threshold";    // float >= 0, finite

// metadata_props key of an LLM decoder: its config as JSON.
constexpr const char* kMetaLlm = "sparsedge.llm";

// 2:4 semi-structured linear layer (docs/FORMAT.md, "SemiStructuredMatMul"):
// (X [..., I], values f32 [O, I/2], indices u8 [O, I/4], bias [O]) -> Y [..., O].
// Byte g of row o holds the two kept positions p0 < p1 (0..3) of group g as p0 | (p1 << 2).
constexpr const char* kSemiStructuredMatMul = "SemiStructuredMatMul";
constexpr const char* kAttrInChannels = "in_channels";
constexpr int64_t kSemiStructuredN = 2;  // kept weights per group
constexpr int64_t kSemiStructuredM = 4;  // group length along the input axis
// metadata_props key of a pruned LLM decoder: the export settings and per-layer report as JSON.
constexpr const char* kMetaLlmPrune = "sparsedge.llm_prune";

}  // namespace format
}  // namespace sde
