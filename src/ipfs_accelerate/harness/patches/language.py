"""Model patches for language models (see patches/__init__.py)."""

from __future__ import annotations

import types
from typing import Any


def batched_mm_experts(model: Any, config: Any) -> Any:
    """Run MoE experts with ``batched_mm`` instead of v5's default ``grouped_mm``.

    ``torch._grouped_mm`` has no OpenVINO conversion rule (neither TorchScript nor torch.export
    paths convert it); ``batched_mm`` gathers each token's expert weights and runs ``bmm``, which
    both paths convert. Same experts, same routing: CPU outputs agree to float rounding.
    """
    model.set_experts_implementation("batched_mm")
    return model


def _parallel_selective_scan(
    hidden_states,
    dt,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
    **_: Any,
):
    """Mamba's selective scan in closed form, without a Python loop over the sequence.

    h_t = sum_{s<=t} exp(S_t - S_s) * dt_s B_s u_s with S = cumsum(dt * A) over time, masked for
    s > t before the exp (so nothing overflows); y_t = C_t . h_t (+ D u_t, gated by silu(z)).
    Shapes as transformers' ``mamba_selective_scan``: u, dt, z (b, d, L); A (d, n); B, C (b, n, L).
    Costs O(L^2) memory, which is nothing at test lengths.
    """
    import torch
    import torch.nn.functional as F

    input_dtype = hidden_states.dtype
    dt = dt.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float()[..., None]
    if delta_softplus:
        dt = F.softplus(dt)
    u = hidden_states.float()
    log_a = dt[..., None] * A.float()[None, :, None, :]  # (b, d, L, n), <= 0
    cum = torch.cumsum(log_a, dim=2)
    diff = cum[:, :, :, None, :] - cum[:, :, None, :, :]  # (b, d, t, s, n) = S_t - S_s
    length = u.shape[-1]
    pos = torch.arange(length, device=u.device)
    causal = (pos[None, :] <= pos[:, None])[None, None, :, :, None]  # s <= t
    decay = torch.exp(torch.where(causal, diff, torch.full_like(diff, float("-inf"))))
    bu = dt[..., None] * B.float().transpose(1, 2)[:, None, :, :] * u[..., None]  # (b, d, L, n)
    states = torch.einsum("bdtsn,bdsn->bdtn", decay, bu)
    out = torch.einsum("bdtn,btn->bdt", states, C.float().transpose(1, 2))
    if D is not None:
        out = out + u * D.float()[None, :, None]
    if z is not None:
        out = out * F.silu(z.float())
    out = out.to(input_dtype)
    if return_last_state:
        return out, states[:, :, -1]
    return out


def mamba_parallel_scan(model: Any, config: Any) -> Any:
    """Replace Mamba's sequential scan (a Python loop over the sequence) with a closed form.

    Tracing unrolls the loop at the example's length, so a converted graph silently computes
    the wrong thing at any other length (greedy tokens differed from CPU at 9+ tokens). The
    closed form (see ``_parallel_selective_scan``) has no length-dependent control flow and
    matches the loop to float rounding (checked in tests/test_language_models.py).
    """
    from transformers.models.mamba import modeling_mamba

    original = modeling_mamba.mamba_selective_scan
    for module in model.modules():
        if isinstance(module, modeling_mamba.MambaMixer):
            unpatched = module.forward

            def forward(self, *args: Any, _unpatched=unpatched, **kwargs: Any) -> Any:
                # mamba_selective_scan is a module global that MambaMixer.forward calls by name;
                # swap it only for the duration of this mixer's call.
                modeling_mamba.mamba_selective_scan = _parallel_selective_scan
                try:
                    return _unpatched(*args, **kwargs)
                finally:
                    modeling_mamba.mamba_selective_scan = original

            module.forward = types.MethodType(forward, module)
    return model


PATCHES: dict = {"batched_mm_experts": batched_mm_experts, "mamba_parallel_scan": mamba_parallel_scan}
