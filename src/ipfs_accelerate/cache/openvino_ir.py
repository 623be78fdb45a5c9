"""OpenVINO IR per (model content, example inputs, conversion code, versions): the expensive stage.

The key is derived from what determines the IR — the model's class, its config after every
override, a digest of its weights (which the registry entry and the seed determine), the example
inputs, the requested outputs, the versions of torch / transformers / openvino and a digest of
this package's conversion code — so a registry edit, a new seed or an upgrade misses, and a
re-run of unchanged code hits. A conversion that fails with `UnsupportedModel` is cached too (its
message), so a declared incompatibility does not re-try three converters on every run.

Both cold and warm runs compile the IR read back from the cache, so their numbers are the same.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from . import artifact, get_cache, ledger
from .openvino_compiled import RT_CID
from .store import check_clean

KIND = "openvino-ir"
# source files whose change must invalidate converted IR (paths relative to the package)
CODE = ("hardware/backends/openvino.py", "hardware/backends/base.py", "harness/patches", "cache/openvino_ir.py")

Convert = Callable[[Any, dict[str, np.ndarray], list[str]], tuple[Any, str, list[str]]]


@lru_cache(maxsize=1)
def code_digest() -> str:
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for rel in CODE:
        path = root / rel
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for f in files:
            if f.is_file():
                h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    import openvino
    import torch
    import transformers

    from .. import __version__

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "openvino": openvino.__version__,
        "ipfs_accelerate": __version__,
        "build_code": code_digest(),
    }


def weights_digest(model: Any) -> str:
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(__import__("torch").uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _config(model: Any) -> Any:
    config = getattr(model, "config", None)
    if config is None:
        return None
    data = config.to_dict()
    for local in ("_name_or_path", "transformers_version", "_commit_hash"):  # machine-local / noise
        data.pop(local, None)
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def ir_key(model: Any, example: dict[str, np.ndarray], output_names: list[str]) -> dict[str, Any]:
    cls = type(model)
    return {
        "model_class": f"{cls.__module__}.{cls.__qualname__}",
        "config": _config(model),
        "weights": weights_digest(model),
        "inputs": {
            k: [list(v.shape), str(v.dtype), hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()[:16]]
            for k, v in example.items()
        },
        "outputs": list(output_names),
        # which converters may run (the same rule as openvino.hf_exporter_enabled; the cache does not import
        # the backend): a failure recorded with the exporter off is not final with it on
        "ir": {"compress_to_fp16": False, "hf_exporter": os.environ.get("IPFS_ACCELERATE_OV_HF_EXPORTER", "1") != "0"},
        "versions": versions(),
    }


def convert_cached(
    model: Any, example: dict[str, np.ndarray], output_names: list[str], convert: Convert, core: Callable[[], Any]
) -> tuple[Any, str, list[str]]:
    """`convert(model, example, output_names)` through the cache: (ov.Model, path, input order).
    The backend passes its `core` (an ``ov.Core`` factory) in, so the cache never imports the
    backend that imports it."""
    import openvino as ov

    from ..hardware.backends.base import UnsupportedModel

    try:
        cache = get_cache()
        key = ir_key(model, example, output_names) if cache.config.enabled else {}
        check_clean(key)
    except Exception as exc:  # an unusable cache location or an unstorable key must not fail the case
        ledger.record(KIND, "error", detail=f"{type(exc).__name__}: {exc}")
        return convert(model, example, output_names)

    def build(folder: Path) -> None:
        try:
            ov_model, path, order = convert(model, example, output_names)
        except UnsupportedModel as exc:
            (folder / "failed.txt").write_text(str(exc))
            return
        ov.save_model(ov_model, folder / "model.xml", compress_to_fp16=False)
        (folder / "meta.json").write_text(json.dumps({"conversion": path, "order": order}, indent=1))

    with artifact(KIND, key, build) as folder:
        if (folder / "failed.txt").exists():
            raise UnsupportedModel((folder / "failed.txt").read_text())
        meta = json.loads((folder / "meta.json").read_text())
        bin_path = folder / "model.bin"
        weights = np.frombuffer(bin_path.read_bytes() if bin_path.exists() else b"", dtype=np.uint8)
        xml = (folder / "model.xml").read_text()
        cid = folder.name if folder.parent == cache.root / "objects" else ""  # a verified object (not --no-cache's temp)
    # in-memory copies: the compiled model never maps a cache file another run may evict
    ov_model = core().read_model(xml, ov.Tensor(weights.copy()))
    if cid:  # the compiled-blob cache keys on it (openvino_compiled.py): no re-hash of the IR
        ov_model.set_rt_info(cid, RT_CID)
    return ov_model, meta["conversion"], list(meta["order"])
