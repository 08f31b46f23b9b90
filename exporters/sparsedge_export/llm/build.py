"""Write a decoder directory: model.onnx + model.onnx.data, tokenizer.json, generation_config.json.

Every file is written under a temporary name in the output directory and
renamed into place only when all of them are complete, so an interrupted build
never leaves a partial file under a final name (the weights file is renamed
first: ``model.onnx`` never names data it does not match, except in the
instant between the two renames when a previous build is being replaced).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from onnx import TensorProto

from .gguf_model import GgufModel, load_gguf
from .onnx_decoder import DecoderModel, build_decoder_graph
from .tokenizer import build_tokenizer

__all__ = ["build_decoder_dir", "build_smollm2", "write_model_with_external_data",
           "generation_config", "MODEL_FILE", "DATA_FILE"]

MODEL_FILE = "model.onnx"
DATA_FILE = "model.onnx.data"
TOKENIZER_FILE = "tokenizer.json"
GENERATION_CONFIG_FILE = "generation_config.json"
# Every tensor's offset in the data file is a multiple of this, so a runtime can map it in place.
DATA_ALIGNMENT = 64
# SmolLM2-Instruct's model card samples with these.
DEFAULT_SAMPLING = {"do_sample": True, "temperature": 0.2, "top_p": 0.9}


def _log(message: str) -> None:
    print(f"[sparsedge llm] {message}", file=sys.stderr, flush=True)


def _temp_path(directory: Path, final: str) -> Path:
    fd, name = tempfile.mkstemp(dir=directory, prefix=f".{final}.", suffix=".part")
    os.close(fd)
    os.chmod(name, 0o644)
    return Path(name)


def _write_fsync(path: Path, chunks) -> None:
    with open(path, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())


def write_model_with_external_data(decoder: DecoderModel, model_tmp: Path, data_tmp: Path,
                                   data_location: str = DATA_FILE) -> int:
    """Write the weights to ``data_tmp`` (aligned) and the model, pointing at ``data_location``, to ``model_tmp``.

    Returns the size of the data file. The weights never enter the protobuf, so
    memory stays at one copy of them.
    """
    by_name = {t.name: t for t in decoder.model.graph.initializer}
    offset = 0
    with open(data_tmp, "wb") as handle:
        for name, array in decoder.weights.items():
            pad = -offset % DATA_ALIGNMENT
            if pad:
                handle.write(b"\0" * pad)
                offset += pad
            # float32 weights, and the int32/uint8 index arrays of sparse layers, little-endian.
            raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
            handle.write(memoryview(raw).cast("B"))
            tensor = by_name[name]
            tensor.data_location = TensorProto.EXTERNAL
            del tensor.external_data[:]
            for key, value in (("location", data_location), ("offset", str(offset)), ("length", str(raw.nbytes))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
            offset += raw.nbytes
        handle.flush()
        os.fsync(handle.fileno())
    _write_fsync(model_tmp, [decoder.model.SerializeToString()])
    return offset


def generation_config(gm: GgufModel) -> dict:
    c, meta = gm.config, gm.metadata
    tokens = meta.get("tokenizer.ggml.tokens") or []
    stop = [t for t in (c.eos_token_id,) if t is not None]
    im_end = tokens.index("<|im_end|>") if "<|im_end|>" in tokens else None
    if im_end is not None and im_end not in stop:
        stop.append(im_end)
    return {
        "bos_token_id": c.bos_token_id, "eos_token_id": c.eos_token_id, "pad_token_id": c.pad_token_id,
        "stop_token_ids": stop, "add_bos_token": c.add_bos_token,
        "context_length": c.context, "max_new_tokens": 256, **DEFAULT_SAMPLING,
        "chat_template": c.chat_template,
    }


def build_decoder_dir(gm: GgufModel, out_dir: Path | str, transform=None) -> dict[str, Path]:
    """Write the four files of ``gm`` into ``out_dir``; returns their final paths.

    ``transform`` (DecoderModel -> DecoderModel), if given, rewrites the graph before it is written
    (the pruned exporter swaps linear layers for sparse ops there).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    finals = {name: out_dir / name for name in (MODEL_FILE, DATA_FILE, TOKENIZER_FILE, GENERATION_CONFIG_FILE)}
    temps = {name: _temp_path(out_dir, name) for name in finals}
    try:
        _log("building tokenizer")
        tokenizer = build_tokenizer(gm.metadata)
        _write_fsync(temps[TOKENIZER_FILE], [tokenizer.to_str(pretty=False).encode("utf-8")])
        _write_fsync(temps[GENERATION_CONFIG_FILE], [json.dumps(generation_config(gm), indent=2).encode("utf-8")])
        _log("building the decoder graph")
        decoder = build_decoder_graph(gm)
        if transform is not None:
            decoder = transform(decoder)
        _log(f"writing {len(decoder.weights)} weight tensors")
        size = write_model_with_external_data(decoder, temps[MODEL_FILE], temps[DATA_FILE])
        for name in (DATA_FILE, TOKENIZER_FILE, GENERATION_CONFIG_FILE, MODEL_FILE):
            os.replace(temps[name], finals[name])
    except BaseException:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    _log(f"{finals[MODEL_FILE]}: {len(decoder.model.graph.node)} nodes, "
         f"{finals[MODEL_FILE].stat().st_size / 1e3:.0f} kB + {size / 1e6:.1f} MB external data")
    return finals


def build_smollm2(out_dir: Path | str, gguf_path: Path | str | None = None, progress: bool = True) -> Path:
    """Build SmolLM2-135M-Instruct from its cached GGUF (or ``gguf_path``); returns ``out_dir/model.onnx``."""
    if gguf_path is None:
        from .. import assets

        gguf_path = assets.smollm2_gguf()
    _log(f"reading {gguf_path}")
    gm = load_gguf(gguf_path, progress=progress)
    return build_decoder_dir(gm, out_dir)[MODEL_FILE]
