"""Edge LLM export: a llama-architecture GGUF (SmolLM2-135M) -> an ONNX decoder with a KV cache.

``load_gguf`` reads weights and config, ``build_tokenizer`` the BPE tokenizer,
``ReferenceDecoder`` is the independent numpy reference, ``build_decoder_graph``
the ONNX graph, and ``build_smollm2``/``build_decoder_dir`` write a model
directory (docs/FORMAT.md, "SmolLM2 decoder graph").
"""

from .build import build_decoder_dir, build_smollm2, generation_config
from .errors import LlmExportError
from .gguf_model import GgufModel, LlamaConfig, load_gguf
from .onnx_decoder import build_decoder_graph, input_names, output_names
from .reference import KVCache, ReferenceDecoder
from .tokenizer import build_tokenizer, save_tokenizer_json

__all__ = ["LlmExportError", "GgufModel", "LlamaConfig", "load_gguf", "build_tokenizer", "save_tokenizer_json",
           "ReferenceDecoder", "KVCache", "build_decoder_graph", "input_names", "output_names",
           "build_decoder_dir", "build_smollm2", "generation_config"]
