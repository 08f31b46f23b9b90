"""`sparsedge bench-llm` on a tiny llama decoder: both runtimes run the same prompt
and agree on the last-token logits, the report has one row per runtime, and peak
memory comes from fresh processes (so it cannot be the test process's)."""

from __future__ import annotations

import re

import pytest

from sparsedge_export.llm import build_decoder_dir, load_gguf
from sparsedge_export.llm.bench_llm import bench_llm
from sparsedge_export.llm.errors import LlmExportError
from test_llm_export import _tiny_llama_gguf


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_llm")
    gm = load_gguf(_tiny_llama_gguf(out / "tiny.gguf", seed=5), progress=False)
    return build_decoder_dir(gm, out / "decoder")["model.onnx"].parent


def test_bench_llm_report(tiny_dir):
    pytest.importorskip("sparsedge")
    timings, report = bench_llm([tiny_dir], prompt_tokens=12, decode_tokens=3, rounds=2, chunk=5,
                                memory=True, progress=False)
    assert set(timings) == {"sparsedge decoder", "onnxruntime decoder"}
    for t in timings.values():
        assert len(t.prefill_ms) == 2 and len(t.decode_ms) == 2
        assert t.prefill_tps(12) > 0 and t.decode_tps() > 0
        assert 10 < t.peak_rss_mb < 4000
    err = float(re.search(r"max\|diff\|/max\|ref\| = (\S+)", report).group(1))
    assert err < 1e-4
    assert report.count("\nsparsedge decoder") == 1 and report.count("\nonnxruntime decoder") == 1


def test_bench_llm_rejects_bad_arguments(tiny_dir, tmp_path):
    with pytest.raises(LlmExportError, match="decoder directory"):
        bench_llm([tmp_path], progress=False)
    with pytest.raises(LlmExportError, match="at least 1"):
        bench_llm([tiny_dir], rounds=0, progress=False)
