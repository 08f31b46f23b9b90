"""The sparsedge model format, Python side.

Mirrors ``cpp/src/format/sparsedge_format.h``; docs/FORMAT.md specifies both,
and ``tests/python/test_format.py`` checks that a model written here is read
identically by the C++ core.
"""

DOMAIN = "ai.sparsedge"
DOMAIN_VERSION = 1
FORMAT_VERSION = 1
IR_VERSION = 10
ONNX_OPSET = 17

GROUP_SPARSE_CONV = "GroupSparseConv"
GROUP_SPARSE_MATMUL = "GroupSparseMatMul"

# Input positions shared by both ops.
INPUT_X, INPUT_VALUES, INPUT_COL_INDICES, INPUT_ROW_PTR, INPUT_BIAS = range(5)

ATTR_BLOCK_SIZE = "block_size"
ATTR_OUT_CHANNELS = "out_channels"
ATTR_KERNEL_SHAPE = "kernel_shape"
ATTR_STRIDES = "strides"
ATTR_PADS = "pads"
ATTR_DILATIONS = "dilations"
ATTR_ACTIVATION_MIN = "activation_min"
ATTR_ACTIVATION_MAX = "activation_max"

BLOCK_SIZES = (1, 2, 4, 8)

# The "no activation" clamp bound (float32 max; ONNX attributes avoid inf).
NO_CLAMP = 3.4028234663852886e38

META_FORMAT_VERSION = "sparsedge.format_version"
META_EXPORT = "sparsedge.export"

# LLM decoder ops (docs/FORMAT.md, "LLM decoder ops").
RMS_NORM = "RMSNorm"                    # (x, weight) -> y; attr epsilon
ROTARY_EMBEDDING = "RotaryEmbedding"    # (x [B,T,H,D], position_ids [B,T]) -> y; attrs base, interleaved
CAUSAL_ATTENTION = "CausalAttention"    # (q, k, v, past_k, past_v) -> (out, present_k, present_v)

ATTR_EPSILON = "epsilon"
ATTR_BASE = "base"
ATTR_INTERLEAVED = "interleaved"
ATTR_NUM_HEADS = "num_heads"
ATTR_KV_HEADS = "kv_heads"
ATTR_SCALE = "scale"
# CausalAttention temporal-delta attention (docs/DELTA_ATTENTION.md); absent or window 0 = dense.
ATTR_DELTA_WINDOW = "delta_window"              # int >= 0
ATTR_DELTA_Q_THRESHOLDS = "delta_q_thresholds"  # floats [num_heads], >= 0, finite
ATTR_DELTA_P_THRESHOLD = "delta_p_threshold"    # float >= 0, finite

# metadata_props key of an LLM decoder: its config as JSON.
META_LLM = "sparsedge.llm"

# 2:4 semi-structured linear layer (docs/FORMAT.md, "SemiStructuredMatMul"):
# (X [..., I], values f32 [O, I/2], indices u8 [O, I/4], bias [O]) -> Y [..., O].
SEMI_STRUCTURED_MATMUL = "SemiStructuredMatMul"
ATTR_IN_CHANNELS = "in_channels"
SEMI_STRUCTURED_N = 2  # kept weights per group
SEMI_STRUCTURED_M = 4  # group length along the input axis
# metadata_props key of a pruned LLM decoder: the export settings and per-layer report as JSON.
META_LLM_PRUNE = "sparsedge.llm_prune"
META_DELTA_ATTENTION = "sparsedge.delta_attention"
