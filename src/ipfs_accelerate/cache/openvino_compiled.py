"""OpenVINO compiled models per (IR content, device, config, OpenVINO version, CPU): a warm re-run
imports the exported blob instead of compiling, and skips the crash probe.

Why: with the IR cached, compiling is what is left of OpenVINO's prepare, twice per case (the f32
parity compile and the plugin-default variant), plus the default compile's crash probe in another
process (OpenVINO 2026.4's bf16 compile_model SIGFPEs on some graphs). Measured here on tiny
models: compile 0.15-2.2 s, `import_model` of the exported blob 0.06-0.7 s (3-5x less), outputs
bit-identical to the fresh compile for bert, swin, mt5, cvt and groupvit (not for every graph:
see the import at the end).

Why not OpenVINO's own `CACHE_DIR`: its files are named by OpenVINO's hash and never re-verified;
here the blob is an artifact like the IR (`store.py`), stored under its CID and checked on every
read, so a corrupt blob is evicted and recompiled, never imported. A compile the probe saw crash
is cached too (its message), so a re-run records the same crash without starting the probe; a
probe timeout is not (load, not the graph). The IR's CID comes from `openvino_ir.convert_cached`
(rt_info), so the key costs no hashing; a model without one (cache off or unusable) compiles as
before.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import artifact, get_cache, ledger

KIND = "openvino-compiled"
RT_CID = "ipfs_accelerate_ir_cid"  # rt_info key: the CID of the cached IR folder a model was read from
CRASHED = "crashed.txt"


def ir_cid(ov_model: Any) -> str:
    """The cached IR's CID recorded on a model read back by convert_cached ('' when none)."""
    try:
        return str(ov_model.get_rt_info(RT_CID).astype(str)) if ov_model.has_rt_info(RT_CID) else ""
    except (AttributeError, RuntimeError, TypeError):
        return ""


@lru_cache(maxsize=4)
def device_identity(core: Any, device: str) -> dict[str, Any]:
    """What a compiled blob depends on besides the graph: the plugin build and the CPU's ISA."""
    import openvino

    out: dict[str, Any] = {"openvino": openvino.__version__}
    for prop in ("FULL_DEVICE_NAME", "OPTIMIZATION_CAPABILITIES"):
        try:
            value = core.get_property(device, prop)
            out[prop] = sorted(value) if isinstance(value, list | tuple) else str(value)
        except RuntimeError:
            out[prop] = ""
    return out


def compiled_key(core: Any, cid: str, device: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"ir": cid, "device": device, "config": {k: str(v) for k, v in sorted(config.items())},
            "runtime": device_identity(core, device)}


def compile_cached(core: Any, ov_model: Any, device: str, config: dict[str, Any], *,
                   probe: Callable[[], None] | None = None, crashed: type[Exception] = RuntimeError) -> Any:
    """`core.compile_model(ov_model, device, config)` through the cache.

    `probe` (when given) runs before a real compile and raises `crashed` if the compile would kill
    this process; its crash message is cached and re-raised as `crashed` on later runs."""

    def compile_here() -> Any:
        if probe is not None:
            probe()
        return core.compile_model(ov_model, device, config)

    cid = ir_cid(ov_model)
    try:
        if not cid or not get_cache().config.enabled:
            return compile_here()
        key = compiled_key(core, cid, device, config)
    except crashed:
        raise
    except Exception as exc:  # an unusable cache must not fail the case
        ledger.record(KIND, "error", detail=f"{type(exc).__name__}: {exc}")
        return compile_here()

    def build(folder: Path) -> None:
        try:
            compiled = compile_here()
        except crashed as exc:
            if "did not finish" in str(exc):  # a timeout: maybe load, not the graph; not cached
                raise
            (folder / CRASHED).write_text(str(exc))
            return
        buf = io.BytesIO()
        compiled.export_model(buf)
        (folder / "compiled.blob").write_bytes(buf.getvalue())

    with artifact(KIND, key, build) as folder:
        if (folder / CRASHED).exists():
            raise crashed((folder / CRASHED).read_text())
        blob = (folder / "compiled.blob").read_bytes()  # in memory: an eviction cannot pull it away
    # imported on a miss too: an imported blob is not always bit-identical to the compile it came
    # from (pp_chart2table's logits moved by 2e-6), and cold and warm runs must report the same numbers
    try:
        return core.import_model(io.BytesIO(blob), device, config)
    except RuntimeError as exc:
        # the plugin exported a blob it cannot read back: transformers' exporter's MoE graphs compile
        # to GatherMatmul ops whose "extension" opset import_model rejects (OpenVINO 2026.4). The
        # blob stays (it is what the plugin wrote); this model compiles fresh on every run.
        ledger.record(KIND, "error", detail=f"import_model: {str(exc).strip().splitlines()[-1][:200]}")
        return compile_here()
