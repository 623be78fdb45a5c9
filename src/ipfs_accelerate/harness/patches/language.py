"""Model patches for language models (see patches/__init__.py)."""

from __future__ import annotations

from typing import Any


def batched_mm_experts(model: Any, config: Any) -> Any:
    """Run MoE experts with ``batched_mm`` instead of v5's default ``grouped_mm``.

    ``torch._grouped_mm`` has no OpenVINO conversion rule (neither TorchScript nor torch.export
    paths convert it); ``batched_mm`` gathers each token's expert weights and runs ``bmm``, which
    both paths convert. Same experts, same routing: CPU outputs agree to float rounding.
    """
    model.set_experts_implementation("batched_mm")
    return model


PATCHES: dict = {"batched_mm_experts": batched_mm_experts}
