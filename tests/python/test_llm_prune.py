"""Pruned LLM decoders (sparsedge_export.llm.prune, `sparsedge export-llm`): 2:4 and Bx1 group sparsity.

On a tiny llama GGUF (2 layers, hidden 16; test_llm_export's fixture): the 2:4 structure
holds exactly, onnxruntime runs the pruned file and equals the dense graph built from the
densified weights (prompt and decode steps through the KV cache), reconstruction
(SparseGPT) lowers the output error below magnitude pruning on calibration data, Wanda
picks a different mask than magnitude, and bad arguments raise LlmPruneError (an
ExportError) before anything is written. No asset is needed.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from test_llm_export import _run_steps, _tiny_llama_gguf

from sparsedge_export import format as fmt
from sparsedge_export.cli import main as cli_main
from sparsedge_export.llm import GgufModel, build_decoder_dir, load_gguf
from sparsedge_export.llm.errors import LlmPruneError
from sparsedge_export.llm.prune import (calibration_tokens, export_llm, mask_2_4, parse_target, prune_decoder,
                                        prune_weight)
from sparsedge_export.llm.semistructured import SemiStructuredWeights, densify_2_4, encode_2_4
from sparsedge_export.sparsify.errors import ExportError
from sparsedge_export.sparsify.writer import BsrWeights, densify_bsr

CALIBRATION = "the theatre then thrilled them; she thought the other would hear the truth. " * 30
PROMPT = [5, 70, 104, 101, 32, 116]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _tiny_llama_gguf(tmp_path_factory.mktemp("tiny") / "tiny.gguf")


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _sparse_weights(model_path: Path, gm: GgufModel) -> dict[str, tuple[str, np.ndarray]]:
    """Densify every sparse node of an exported file: GGUF weight name -> (op type, [O, I])."""
    model = onnx.load(str(model_path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    dense = {}
    for node in model.graph.node:
        name = f"{node.name}.weight"
        if node.op_type == fmt.SEMI_STRUCTURED_MATMUL:
            sw = SemiStructuredWeights(inits[node.input[1]], inits[node.input[2]])
            assert sw.indices.dtype == np.uint8 and sw.values.shape[1] == 2 * sw.indices.shape[1]
            dense[name] = (node.op_type, densify_2_4(sw))
        elif node.op_type == fmt.GROUP_SPARSE_MATMUL:
            bsr = BsrWeights(inits[node.input[1]], inits[node.input[2]], inits[node.input[3]])
            out_channels, in_channels = gm.weights[name].shape
            dense[name] = (node.op_type, densify_bsr(bsr, out_channels, in_channels)[:, :, 0])
    return dense


def _with_weights(gm: GgufModel, weights: dict[str, np.ndarray]) -> GgufModel:
    return GgufModel(gm.config, {**gm.weights, **weights}, gm.metadata, gm.path)


def _correlated_layer(seed: int = 0, tokens: int = 512, in_channels: int = 64, out_channels: int = 24):
    """A weight and inputs whose features are correlated and of very different scales (like LLM activations)."""
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.normal(0, 1.0, in_channels))
    x = (rng.standard_normal((tokens, in_channels)) @ (np.eye(in_channels) + 0.4 * rng.standard_normal(
        (in_channels, in_channels)))) * scales
    w = rng.standard_normal((out_channels, in_channels)).astype(np.float32)
    x = x.astype(np.float32)
    return w, x, (x.T @ x).astype(np.float64)


def test_2_4_encoding_round_trips_and_packs_two_positions_per_byte():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((7, 32)).astype(np.float32)
    mask = mask_2_4(np.abs(w))
    assert np.all(mask.reshape(7, 8, 4).sum(-1) == 2)
    sw = encode_2_4(w, mask)
    assert sw.values.shape == (7, 16) and sw.indices.shape == (7, 8) and sw.indices.dtype == np.uint8
    p0, p1 = sw.indices & 3, sw.indices >> 2
    assert np.all(p0 < p1) and np.all(sw.indices < 16)
    np.testing.assert_array_equal(densify_2_4(sw), np.where(mask, w, 0))
    # The two kept weights are the largest two of each group.
    groups = np.abs(w).reshape(7, 8, 4)
    kept = np.abs(np.where(mask, w, 0)).reshape(7, 8, 4)
    assert np.all(np.sort(kept, -1)[..., 2:] == np.sort(groups, -1)[..., 2:])
    with pytest.raises(ValueError, match="2 of every 4"):
        encode_2_4(w, np.ones_like(mask))


@pytest.mark.parametrize("method", ["magnitude", "wanda", "reconstruct"])
def test_2_4_structure_is_exact_for_every_method(method):
    w, _, h = _correlated_layer()
    pruned, mask = prune_weight(w, parse_target("2:4"), method, h)
    assert np.all(mask.reshape(w.shape[0], -1, 4).sum(-1) == 2)
    assert np.all(pruned[~mask] == 0)
    assert np.all(np.count_nonzero(pruned.reshape(w.shape[0], -1, 4), axis=-1) <= 2)


@pytest.mark.parametrize("sparsity,pattern,op", [("2:4", None, fmt.SEMI_STRUCTURED_MATMUL),
                                                 ("0.5", "4x1", fmt.GROUP_SPARSE_MATMUL)])
def test_pruned_file_runs_in_onnxruntime_and_equals_the_dense_model(tiny, tmp_path, sparsity, pattern, op):
    gm = load_gguf(tiny, progress=False)
    out = export_llm(tiny, tmp_path / "sparse", sparsity, pattern, "reconstruct", CALIBRATION, progress=False)
    sparse = _sparse_weights(out, gm)
    assert len(sparse) == 7 * gm.config.layers and {o for o, _ in sparse.values()} == {op}
    for name, (_, w) in sparse.items():
        if op == fmt.SEMI_STRUCTURED_MATMUL:
            assert np.all(np.count_nonzero(w.reshape(w.shape[0], -1, 4), axis=-1) <= 2), name
        else:
            blocks = np.abs(w).reshape(-1, 4, w.shape[1]).sum(1) > 0
            assert abs(1 - blocks.mean() - 0.5) < 0.07, name
    dense_dir = build_decoder_dir(_with_weights(gm, {n: w for n, (_, w) in sparse.items()}), tmp_path / "dense")
    got = _run_steps(ort.InferenceSession(str(out)), gm.config, PROMPT, 3)
    ref = _run_steps(ort.InferenceSession(str(dense_dir["model.onnx"])), gm.config, PROMPT, 3)
    for a, b in zip(got, ref):
        assert _rel(a, b) < 1e-5
    # The export also differs from the unpruned model: something was removed.
    assert any(np.abs(w - gm.weights[n]).max() > 0 for n, (_, w) in sparse.items())
    assert fmt.META_LLM_PRUNE in {p.key for p in onnx.load(str(out), load_external_data=False).metadata_props}


@pytest.mark.parametrize("sparsity,pattern", [("2:4", None), ("0.5", "4x1"), ("0.3", "4x1")])
def test_reconstruct_lowers_output_error_below_magnitude(sparsity, pattern):
    w, x, h = _correlated_layer()
    target = parse_target(sparsity, pattern)
    ref = x @ w.T
    errors = {m: _rel(x @ prune_weight(w, target, m, h)[0].T, ref) for m in ("magnitude", "wanda", "reconstruct")}
    assert errors["reconstruct"] < errors["magnitude"]
    assert errors["reconstruct"] < errors["wanda"]


def test_reconstruct_lowers_decoder_error_on_calibration_tokens(tiny):
    from sparsedge_export.llm import ReferenceDecoder

    gm = load_gguf(tiny, progress=False)
    calibration = calibration_tokens(gm, CALIBRATION, 512, 128)
    ids = np.concatenate(calibration)[:128]
    ref = ReferenceDecoder(gm).forward(ids)
    errors = {}
    for method in ("magnitude", "reconstruct"):
        pruned, report, _ = prune_decoder(gm, parse_target("2:4"), method, "all", calibration, progress=False)
        errors[method] = _rel(ReferenceDecoder(pruned).forward(ids), ref)
    assert errors["reconstruct"] < errors["magnitude"]


def test_wanda_differs_from_magnitude():
    w, _, h = _correlated_layer()
    for target in (parse_target("2:4"), parse_target("0.5", "4x1")):
        _, magnitude = prune_weight(w, target, "magnitude")
        _, wanda = prune_weight(w, target, "wanda", h)
        assert (magnitude != wanda).mean() > 0.05


def test_mlp_only_keeps_attention_dense(tiny, tmp_path):
    gm = load_gguf(tiny, progress=False)
    out = export_llm(tiny, tmp_path / "mlp", "2:4", None, "wanda", CALIBRATION, layers="mlp", progress=False)
    sparse = _sparse_weights(out, gm)
    assert sorted({n.split(".")[2] for n in sparse}) == ["ffn_down", "ffn_gate", "ffn_up"]


@pytest.mark.parametrize("kwargs,match", [
    ({"sparsity": "3:4"}, "only the 2:4"),
    ({"sparsity": "half"}, "bad sparsity"),
    ({"sparsity": "1.5"}, r"must be in \(0, 1\)"),
    ({"sparsity": "0"}, r"must be in \(0, 1\)"),
    ({"sparsity": "0.5", "pattern": "3x1"}, "bad pattern"),
    ({"sparsity": "2:4", "pattern": "4x1"}, "fractional sparsity only"),
    ({"method": "optimal"}, "unknown method"),
    ({"method": "wanda"}, "needs calibration text"),
    ({"method": "wanda", "calibration_text": "  \n"}, "calibration text is empty"),
    ({"layers": "attention"}, "unknown layer set"),
])
def test_bad_arguments_raise_export_errors_and_write_nothing(tiny, tmp_path, kwargs, match):
    with pytest.raises(LlmPruneError, match=match) as info:
        export_llm(tiny, tmp_path / "out", progress=False, **kwargs)
    assert isinstance(info.value, ExportError)
    assert not (tmp_path / "out").exists()


def test_cli_errors_are_one_line_and_exit_2(tiny, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert cli_main(["export-llm", str(tiny), "-o", str(tmp_path / "o"), "--method", "reconstruct",
                     "--calibration", str(empty)]) == 2
    assert "calibration text is empty" in capsys.readouterr().err
    assert cli_main(["export-llm", str(tiny), "-o", str(tmp_path / "o"), "--sparsity", "5:8"]) == 2
    assert not (tmp_path / "o").exists()


def test_cli_export_and_perplexity(tiny, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text(CALIBRATION)
    assert cli_main(["export-llm", str(tiny), "-o", str(tmp_path / "m"), "--sparsity", "0.5", "--pattern", "2x1",
                     "--method", "wanda", "--calibration", str(text)]) == 0
    capsys.readouterr()
    assert cli_main(["perplexity", str(tmp_path / "m"), "--text", str(text), "--context", "64",
                     "--max-tokens", "300"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("perplexity: ") and np.isfinite(float(last.split()[1]))


def test_real_smollm2_first_layer_reconstruct_beats_magnitude():
    """One quick check on the real weights: layer 0's q projection on 256 Jane Austen tokens."""
    from conftest import fetch_or_skip

    from sparsedge_export import assets
    from sparsedge_export.llm.reference import rms_norm

    gm = load_gguf(fetch_or_skip(assets.smollm2_gguf), progress=False)
    text = fetch_or_skip(assets.janeausten_texts)["prideprejudice"]
    ids = np.concatenate(calibration_tokens(gm, text, 256, 256))
    x = rms_norm(gm.embedding[ids], gm.layer(0, "attn_norm"), gm.config.rms_eps)
    w = gm.layer(0, "attn_q")
    h = (x.T @ x).astype(np.float64)
    ref = x @ w.T
    errors = {m: _rel(x @ prune_weight(w, parse_target("2:4"), m, h)[0].T, ref) for m in ("magnitude", "reconstruct")}
    assert errors["reconstruct"] < 0.8 * errors["magnitude"], errors


# ---------------------------------------------------------------- global block selection, OWL, dense targets
def test_global_block_selection_keeps_the_highest_scoring_blocks_and_meets_the_fraction():
    from sparsedge_export.llm.prune import mask_blocks

    rng = np.random.default_rng(3)
    score = rng.random((16, 40)) * np.exp(rng.normal(0, 1.5, 40))[None, :]  # some columns matter much more
    for block in (1, 2, 4):
        blocks = score.reshape(16 // block, block, 40).sum(1)
        mask = mask_blocks(score, 0.3, block, "global")
        assert mask.shape == blocks.shape
        assert (~mask).sum() == round(0.3 * blocks.size)
        assert blocks[mask].min() >= blocks[~mask].max()  # one threshold over the whole layer
        assert len(set(mask.sum(1))) > 1  # block rows keep different counts
        row = mask_blocks(score, 0.3, block, "row")
        assert np.all((~row).sum(1) == round(0.3 * 40))
        assert blocks[mask].sum() > blocks[row].sum()  # more saliency kept than the per-row choice


def test_global_block_masks_encode_to_bsr_and_back():
    from sparsedge_export.llm.prune import _expand_blocks, mask_blocks
    from sparsedge_export.sparsify.writer import encode_bsr

    rng = np.random.default_rng(4)
    w = rng.standard_normal((12, 32)).astype(np.float32) * np.exp(rng.normal(0, 1, 32)).astype(np.float32)
    block_mask = mask_blocks(np.abs(w), 0.5, 4, "global")
    bsr = encode_bsr(w[:, :, None], block_mask, 4)
    assert len(set(np.diff(bsr.row_ptr))) > 1
    np.testing.assert_array_equal(densify_bsr(bsr, 12, 32)[:, :, 0], np.where(_expand_blocks(block_mask, 4, 12), w, 0))


def test_reconstruct_global_selection_beats_per_row_selection():
    w, x, h = _correlated_layer(seed=5, in_channels=128, out_channels=32)
    ref = x @ w.T
    errors = {}
    for selection in ("global", "row"):
        target = parse_target("0.5", "4x1")
        pruned, mask = prune_weight(w, dataclasses.replace(target, selection=selection), "reconstruct", h)
        blocks = mask.reshape(8, 4, 128)
        assert np.all(blocks == blocks[:, :1])  # whole 4x1 blocks
        assert abs((~mask).mean() - 0.5) < 1e-9
        errors[selection] = _rel(x @ pruned.T, ref)
    assert errors["global"] < errors["row"], errors


def test_owl_allocation_averages_to_the_target_and_favours_outlier_blocks():
    from sparsedge_export.llm.prune import allocate_fractions

    ratios = np.array([0.02, 0.05, 0.01, 0.03, 0.04])
    fractions = np.array(allocate_fractions(ratios, 0.5, 0.08))
    assert abs(fractions.mean() - 0.5) < 1e-12
    assert abs(fractions.max() - fractions.min() - 0.16) < 1e-12
    assert np.all(np.argsort(fractions) == np.argsort(-ratios))  # more outliers -> less sparsity
    assert np.allclose(allocate_fractions(np.ones(4), 0.3, 0.08), 0.3)
    with pytest.raises(LlmPruneError, match="OWL"):
        allocate_fractions(ratios, 0.05, 0.08)


def test_owl_decoder_meets_the_overall_fraction(tiny):
    gm = load_gguf(tiny, progress=False)
    calibration = calibration_tokens(gm, CALIBRATION, 512, 128)
    _, report, masks = prune_decoder(gm, parse_target("0.5", "2x1"), "wanda", "all", calibration, progress=False,
                                     allocation="owl", owl_m=2.0)  # the random tiny model has few outliers
    per_block = {}
    for name, mask in masks.items():
        per_block.setdefault(int(name.split(".")[1]), []).append(mask)
    removed = {i: 1 - np.concatenate([m.ravel() for m in ms]).mean() for i, ms in per_block.items()}
    assert len(set(np.round(list(removed.values()), 3))) > 1  # the blocks differ
    total = sum(m.size for m in masks.values())
    assert abs(sum((~m).sum() for m in masks.values()) / total - 0.5) < 0.01


def test_dense_target_weight_is_the_least_squares_fit_to_the_dense_outputs():
    from sparsedge_export.llm.prune import DAMPING, _dense_target_weight

    w, xd, _ = _correlated_layer(seed=6)
    rng = np.random.default_rng(6)
    xp = (xd + 0.3 * rng.standard_normal(xd.shape) * xd.std(0)).astype(np.float32)  # drifted inputs
    h = (xp.T @ xp).astype(np.float64)
    fitted = _dense_target_weight(w, h, (xd.T @ xp).astype(np.float64))
    # Normal equations of min ||xd w^T - xp W'^T||^2 + damping * ||W' - w||^2 hold.
    lam = DAMPING * np.mean(np.diag(h))
    lhs = fitted.astype(np.float64) @ (h + lam * np.eye(h.shape[0]))
    rhs = w.astype(np.float64) @ (xd.T @ xp) + lam * w
    assert np.abs(lhs - rhs).max() < 1e-3 * np.abs(rhs).max()
    assert _rel(xp @ fitted.T, xd @ w.T) < 0.9 * _rel(xp @ w.T, xd @ w.T)
    # With no drift it is the identity.
    np.testing.assert_allclose(_dense_target_weight(w, h, h), w, atol=1e-5)


def test_dense_targets_lower_the_decoder_error(tiny):
    from sparsedge_export.llm import ReferenceDecoder

    gm = load_gguf(tiny, progress=False)
    calibration = calibration_tokens(gm, CALIBRATION, 512, 128)
    ids = np.concatenate(calibration)[:128]
    ref = ReferenceDecoder(gm).forward(ids)
    errors = {}
    for dense_targets in (False, True):
        pruned, _, _ = prune_decoder(gm, parse_target("2:4"), "reconstruct", "all", calibration, progress=False,
                                     dense_targets=dense_targets)
        errors[dense_targets] = _rel(ReferenceDecoder(pruned).forward(ids), ref)
    assert errors[True] < errors[False], errors


def test_magnitude_export_needs_no_calibration_and_reports_the_settings(tiny, tmp_path):
    import json

    out = export_llm(tiny, tmp_path / "mag", "0.5", "2x1", "magnitude", progress=False)
    meta = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    info = json.loads(meta[fmt.META_LLM_PRUNE])
    assert info["calibration_tokens"] == 0 and info["selection"] == "global" and info["dense_targets"] is False
