"""The WebAssembly build under node: the native C++ tests compiled with
emscripten (every wasmsimd kernel against its reference, the operators per
ISA, the C API), the SIMD128 instructions really present, and whole models
(MobileNet-v1 dense and 80% group-sparse, EfficientNet-Lite0) through the JS
API against onnxruntime outputs computed on this machine; and text generation
(the JS Generator over sde::llm::Generator) on a tiny synthetic llama decoder
directory, against sparsedge.Generator in Python on the same directory.

Needs emscripten and node (tools/setup.sh installs emscripten); skips with the
reason when either is missing. Build directories build/wasm and
build/wasm-tests are reused between runs (wasm/build.sh).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
BUILD_SH = ROOT / "wasm" / "build.sh"


def _run(cmd, timeout, **kw):
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)
    assert result.returncode == 0, (f"{' '.join(map(str, cmd))} failed:\n"
                                    f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def toolchain():
    missing = [tool for tool in ("emcc", "emcmake", "node", "cmake") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (tools/setup.sh installs emscripten; "
                    "node 18+ is needed to run the wasm)")


@pytest.fixture(scope="module")
def dist(toolchain):
    _run(["bash", str(BUILD_SH), "dist"], timeout=1200)
    return ROOT / "wasm" / "dist"


# The tiny decoder: the seed of its random weights gives a greedy continuation
# that is not one repeated token.
TINY_SEED = 5
TINY_MAX_CONTEXT, TINY_PREFILL_CHUNK = 64, 4


def build_tiny_decoder(out: Path) -> Path:
    """A decoder directory from test_llm_export's synthetic llama GGUF (2 layers, byte-level vocab)."""
    from sparsedge_export.llm import build_decoder_dir, load_gguf
    from test_llm_export import _tiny_llama_gguf

    out.mkdir(parents=True, exist_ok=True)
    gm = load_gguf(_tiny_llama_gguf(out / "tiny.gguf", seed=TINY_SEED), progress=False)
    return build_decoder_dir(gm, out / "decoder")["model.onnx"].parent


def python_generation(decoder: Path) -> dict:
    """What sparsedge.Generator (Python) produces on `decoder`: the expectations of
    wasm/test/generator.test.mjs (SPARSEDGE_GENERATOR_CHECK) and of the demo page test."""
    import sparsedge

    gen = sparsedge.Generator(decoder, max_context=TINY_MAX_CONTEXT, prefill_chunk=TINY_PREFILL_CHUNK)
    prompt, steps = "The weather today", 24
    greedy_ids = list(gen.generate_ids(prompt, steps))
    greedy_stop = gen.last_stats.stopped_by
    pieces = list(gen.generate(prompt, steps))
    sampled = []
    for text, temperature, top_k, top_p, seed in (("Once upon a time", 0.9, 50, 0.95, 7),
                                                   ("The weather today", 1.0, 0, 1.0, 2**63 + 12345),
                                                   ("hello the world", 0.7, 20, 0.8, -3)):
        kw = dict(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        sampled.append({"prompt": text, "max_new_tokens": 40, "temperature": temperature, "top_k": top_k,
                        "top_p": top_p, "seed": str(seed), "seed_is_big": abs(seed) > 2**53,
                        "ids": list(gen.generate_ids(text, 40, **kw)), "text": "".join(gen.generate(text, 40, **kw))})
    stop_ids = [greedy_ids[5]]
    stop_run = list(gen.generate_ids(prompt, 64, stop_ids=stop_ids))
    assert gen.last_stats.stopped_by == "stop_token"
    full_prompt = gen.encode(prompt)[:1] * (TINY_MAX_CONTEXT - 4)
    full_ids = list(gen.generate_ids(full_prompt, 100))
    unicode_text = "héllo €"
    return {
        "dir": str(decoder), "max_context": TINY_MAX_CONTEXT, "prefill_chunk": TINY_PREFILL_CHUNK,
        "stop_ids": gen.stop_ids,
        "greedy": {"prompt": prompt, "prompt_ids": gen.encode(prompt), "max_new_tokens": steps, "ids": greedy_ids,
                   "stopped_by": greedy_stop, "pieces": pieces, "text": "".join(pieces)},
        "sampled": sampled,
        "stop": {"stop_ids": stop_ids, "ids": stop_run},
        "full": {"prompt_ids": full_prompt, "ids": full_ids, "stopped_by": gen.last_stats.stopped_by},
        "unicode": {"text": unicode_text, "ids": gen.encode(unicode_text)},
    }


@pytest.fixture(scope="module")
def generator_check(tmp_path_factory):
    """SPARSEDGE_GENERATOR_CHECK for wasm/test/generator.test.mjs."""
    out = tmp_path_factory.mktemp("tiny_decoder")
    check = python_generation(build_tiny_decoder(out))
    assert len(set(check["greedy"]["ids"])) > 3, check["greedy"]["ids"]  # not a degenerate continuation
    path = out / "generator_check.json"
    path.write_text(json.dumps(check, ensure_ascii=False), encoding="utf-8")
    return path


def test_native_tests_under_node_exercise_wasmsimd(toolchain, model_checks):
    env = dict(os.environ, SPARSEDGE_MODEL_CHECK_DIR=str(model_checks))
    env.pop("SPARSEDGE_ISA", None)  # the start-up choice must be wasmsimd
    out = _run(["bash", str(BUILD_SH), "tests"], timeout=1500, env=env).stdout  # ctest -V
    summary = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", out)
    assert summary, out[-3000:]
    assert summary.group(2) == "0" and int(summary.group(3)) == 9, summary.group(0)
    assert "Skipped" not in out and "skipped:" not in out, "test_models did not run its checks"
    # The SIMD128 kernels were dispatched and tested, not only the scalar fallback.
    line = re.search(r"test_kernels: (\d+) kernels tested, 0 skipped, dispatch=wasmsimd \((\w+)\)", out)
    assert line and int(line.group(1)) >= 11 and "__wasmsimd" in line.group(2), out[-3000:]
    assert "test_operators: wasmsimd done" in out
    assert "test_gspmm: all passed" in out and "test_capi: all checks passed" in out
    assert "test_llm: all checks passed" in out  # same seeded draws as on x86
    assert "test_models: 3 passed, 0 failed" in out
    assert "gspmm-8x4/wasmsimd" in out and "dwconv5x5s2/wasmsimd" in out and "gemm1x1/wasmsimd" in out


def test_dist_uses_simd128(dist):
    wasm = dist / "sparsedge.wasm"
    assert wasm.stat().st_size > 0 and (dist / "sparsedge.mjs").exists()
    if shutil.which("wasm-objdump") is None:
        pytest.skip("wasm-objdump not installed (apt-get install wabt)")
    disasm = _run(["wasm-objdump", "-d", str(wasm)], timeout=300).stdout
    for instr in ("f32x4.mul", "f32x4.add", "v128.load", "i8x16.shuffle"):
        assert instr in disasm, f"{instr} missing from sparsedge.wasm"


def test_generator_under_node_matches_python(dist, generator_check):
    env = dict(os.environ, SPARSEDGE_GENERATOR_CHECK=str(generator_check))
    env.pop("SPARSEDGE_ISA", None)
    out = _run([shutil.which("node"), "--test", "wasm/test/generator.test.mjs"], timeout=300, env=env).stdout
    assert re.search(r"# pass 7\b", out) and re.search(r"# fail 0\b", out), out[-3000:]
    assert re.search(r"# skipped 0\b", out), out[-3000:]
    for name in ("greedy ids match Python", "equals Python with the same seed", "bad inputs throw"):
        assert re.search(rf"^ok \d+ - generator: [^\n]*{name}", out, re.M), out[-3000:]


def test_models_and_api_under_node(dist, model_checks, generator_check):
    env = dict(os.environ, SPARSEDGE_MODEL_CHECK_DIR=str(model_checks), SPARSEDGE_GENERATOR_CHECK=str(generator_check))
    env.pop("SPARSEDGE_ISA", None)
    result = _run([shutil.which("node"), "--test", "wasm/test/"], timeout=600, env=env)
    out = result.stdout
    passed = re.search(r"# pass (\d+)", out)
    assert passed and int(passed.group(1)) >= 15, out[-3000:]
    assert re.search(r"# fail 0\b", out) and re.search(r"# skipped 0\b", out), out[-3000:]
    for name in ("mobilenet-v1", "mobilenet-v1-sparse80", "efficientnet-lite0"):
        assert re.search(rf"^ok \d+ - {name} matches onnxruntime", out, re.M), out[-3000:]
