"""Recovery by distillation after pruning (sparsedge_export.llm.recover, `export-llm --recover-steps N`).

On the tiny llama GGUF (no asset): the PyTorch decoder that recovery trains computes the same
logits as the independent numpy reference (so the dense teacher is the model we export), recovery
lowers the pruned model's KL to the dense model on text it did not train on, pruned weights stay
exactly zero and the input model is not modified, the exported file carries the recovered weights
with the pruning's block pattern, and bad settings fail before anything is written.
"""

from __future__ import annotations

import builtins
import json

import numpy as np
import onnx
import pytest
from test_llm_export import _tiny_llama_gguf

torch = pytest.importorskip("torch")

from sparsedge_export import format as fmt  # noqa: E402
from sparsedge_export.cli import main as cli_main  # noqa: E402
from sparsedge_export.llm import load_gguf  # noqa: E402
from sparsedge_export.llm.errors import LlmPruneError  # noqa: E402
from sparsedge_export.llm.prune import export_llm, parse_target, prune_decoder  # noqa: E402
from sparsedge_export.llm.recover import _decoder, recover  # noqa: E402
from sparsedge_export.llm.reference import ReferenceDecoder  # noqa: E402

CALIBRATION = "the theatre then thrilled them; she thought the other would hear the truth. " * 30


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _tiny_llama_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf", seed=3)


def _kl(teacher, student, ids: np.ndarray) -> float:
    with torch.no_grad():
        p = torch.log_softmax(teacher(torch.from_numpy(ids)), -1)
        q = torch.log_softmax(student(torch.from_numpy(ids)), -1)
    return float((p.exp() * (p - q)).sum(-1).mean())


def test_torch_decoder_matches_numpy_reference(tiny):
    gm = load_gguf(tiny, progress=False)
    ids = np.random.default_rng(0).integers(0, gm.config.vocab, size=(2, 40))
    with torch.no_grad():
        got = _decoder(torch, gm, trainable=False)(torch.from_numpy(ids)).numpy()
    for row in range(2):
        ref = ReferenceDecoder(gm).forward(ids[row])
        assert np.abs(got[row] - ref).max() <= 1e-4 * np.abs(ref).max()


def test_recovery_lowers_kl_on_held_out_tokens_and_keeps_the_masks(tiny):
    gm = load_gguf(tiny, progress=False)
    rng = np.random.default_rng(1)
    train = rng.integers(0, gm.config.vocab, size=4000)
    held_out = rng.integers(0, gm.config.vocab, size=(4, 64))
    pruned, _, masks = prune_decoder(gm, parse_target("0.5", "2x1"), "magnitude", "all", progress=False)
    before = {k: v.copy() for k, v in pruned.weights.items()}
    recovered, report = recover(gm, pruned, masks, train, steps=40, batch=4, lr=1e-2, progress=False)

    for key, value in before.items():  # the input model is untouched
        np.testing.assert_array_equal(pruned.weights[key], value)
    for key, mask in masks.items():
        assert not np.any(recovered.weights[key][~mask]), key  # pruned stays pruned
        assert np.any(recovered.weights[key][mask] != pruned.weights[key][mask]), key  # kept weights learned
    np.testing.assert_array_equal(recovered.weights["token_embd.weight"], gm.weights["token_embd.weight"])

    teacher = _decoder(torch, gm, trainable=False)
    kl_before = _kl(teacher, _decoder(torch, pruned, trainable=False), held_out)
    kl_after = _kl(teacher, _decoder(torch, recovered, trainable=False), held_out)
    assert kl_after < 0.7 * kl_before, (kl_before, kl_after)
    assert report["steps"] == 40 and report["tokens_seen"] == 40 * 4 * 64  # seq_len capped at the context (64)
    assert report["kl_last"] < report["kl_first"]


def test_export_with_recovery_writes_recovered_weights_in_the_same_pattern(tiny, tmp_path):
    plain = export_llm(tiny, tmp_path / "plain", "0.5", "2x1", "wanda", CALIBRATION, progress=False)
    out = export_llm(tiny, tmp_path / "rec", "0.5", "2x1", "wanda", CALIBRATION, progress=False,
                     recover_steps=5, recover_lr=1e-3, recover_batch=2)
    info = {}
    for path in (plain, out):
        model = onnx.load(str(path))
        props = {p.key: p.value for p in model.metadata_props}
        info[path] = json.loads(props[fmt.META_LLM_PRUNE])
        nodes = {n.name: n for n in model.graph.node if n.op_type == fmt.GROUP_SPARSE_MATMUL}
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        info[path, "pattern"] = {n: (inits[node.input[2]].tolist(), inits[node.input[3]].tolist())
                                 for n, node in nodes.items()}
        info[path, "values"] = {n: inits[node.input[1]] for n, node in nodes.items()}
    assert "recover" not in info[plain] and info[out]["recover"]["steps"] == 5
    assert info[plain, "pattern"] == info[out, "pattern"]  # same BSR structure: recovery never moves a block
    changed = [n for n in info[plain, "values"]
               if not np.array_equal(info[plain, "values"][n], info[out, "values"][n])]
    assert len(changed) == len(info[plain, "values"])


@pytest.mark.parametrize("kwargs, match", [
    ({"recover_steps": -1}, "must be 0"),
    ({"recover_steps": 2, "method": "magnitude", "calibration_text": None}, "needs calibration text"),
    ({"recover_steps": 2, "recover_lr": 0.0}, "positive number"),
    ({"recover_steps": 2, "recover_lr": float("nan")}, "positive number"),
    ({"recover_steps": 2, "recover_batch": 0}, "at least 1"),
])
def test_bad_recovery_settings_fail_before_writing(tiny, tmp_path, kwargs, match):
    args = {"sparsity": "0.5", "pattern": "2x1", "method": "wanda", "calibration_text": CALIBRATION, **kwargs}
    with pytest.raises(LlmPruneError, match=match):
        export_llm(tiny, tmp_path / "out", progress=False, **args)
    assert not (tmp_path / "out").exists()


def test_missing_pytorch_is_a_clear_error(tiny, tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    text = tmp_path / "cal.txt"
    text.write_text(CALIBRATION)
    code = cli_main(["export-llm", str(tiny), "-o", str(tmp_path / "out"), "--sparsity", "0.5", "--pattern", "2x1",
                     "--method", "wanda", "--calibration", str(text), "--recover-steps", "3"])
    assert code == 2
    assert "needs PyTorch" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_too_little_text_for_one_window(tiny):
    gm = load_gguf(tiny, progress=False)
    pruned, _, masks = prune_decoder(gm, parse_target("0.5", "2x1"), "magnitude", "all", progress=False)
    with pytest.raises(LlmPruneError, match="at least 65 calibration tokens"):
        recover(gm, pruned, masks, np.arange(20), steps=1, progress=False)
