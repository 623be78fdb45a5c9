"""OpenVINO precisions teams ship: the device default (bf16 on CPUs that have it) and NNCF
weight-only compression to int8 / int4, each compared with PyTorch f32.

Compression is checked by an oracle that does not depend on speed or accuracy: the number of
weight constants stored as u8/i8/u4/i4 in the compressed graph (0 means nothing was compressed,
whatever the timings say). int4 keeps NNCF's default backup precision for the embedding and the
last layer (int8_asym), as optimum-intel does; int8/int4 variants run with f32 activations so their
accuracy cost is the weights' alone. Tolerances are per precision, vs the PyTorch f32 outputs.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMPRESSED_TYPES = {"u8", "i8", "u4", "i4"}


@dataclass(frozen=True)
class PrecisionPlan:
    """One precision: how to make it, how it is compiled, and what accuracy cost it may have."""

    name: str
    compress: dict[str, Any] | None  # nncf.compress_weights kwargs (mode by name), None: no compression
    inference: str  # "fp32" (INFERENCE_PRECISION_HINT=f32) or "default" (the plugin's choice)
    min_cosine: float  # worst output cosine vs PyTorch f32
    min_token_agreement: float  # share of greedy tokens equal to PyTorch f32's (generation)


# Random-weight models have small logit margins, so token agreement is a weaker signal than on
# trained ones; the cosine of the first forward's outputs is the primary bound.
PLANS: dict[str, PrecisionPlan] = {
    "fp32": PrecisionPlan("fp32", None, "fp32", 0.99999, 1.0),
    "default": PrecisionPlan("default", None, "default", 0.99, 0.5),
    "int8": PrecisionPlan("int8", {"mode": "INT8_ASYM"}, "fp32", 0.995, 0.5),
    # int4: bert-base (random weights) measured cosine 0.884 on its MLM logits here; int8 0.9989, bf16 0.99989
    "int4": PrecisionPlan("int4", {"mode": "INT4_SYM", "group_size": 128, "ratio": 1.0}, "fp32", 0.85, 0.25),
}


def compress(ov_model: Any, plan: PrecisionPlan) -> Any:
    """A compressed copy of `ov_model` (the f32 graph stays usable for the other precisions)."""
    import nncf

    if plan.compress is None:
        return ov_model
    kwargs = dict(plan.compress)
    kwargs["mode"] = getattr(nncf.CompressWeightsMode, kwargs["mode"])
    return nncf.compress_weights(ov_model.clone(), **kwargs)


def compressed_nodes(ov_model: Any) -> int:
    """Weight constants stored in a compressed integer type (the deterministic oracle)."""
    return sum(
        1
        for op in ov_model.get_ops()
        if op.get_type_name() == "Constant" and op.get_output_element_type(0).get_type_name() in COMPRESSED_TYPES
    )


def size_on_disk_mb(ov_model: Any) -> float:
    """Size of the serialised weights (.bin), without f16 compression of f32 constants."""
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="ov-size-") as tmp:
        xml = Path(tmp) / "model.xml"
        ov.save_model(ov_model, str(xml), compress_to_fp16=False)
        return xml.with_suffix(".bin").stat().st_size / 2**20
