"""Hardware detection by real probes: CPU (cores, ISA flags), CUDA, ROCm, MPS, OpenVINO.

Every probe takes its data source as an argument (cpuinfo text, the torch module, the OpenVINO
Core) so tests can feed each answer — yes, no, broken — without the hardware. Nothing is assumed:
the earlier implementation hard-coded `cuda: True`.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8", "neon", "asimd")


@dataclass
class CPUInfo:
    model: str
    arch: str
    logical_cores: int
    physical_cores: int | None
    usable_cores: int
    flags: list[str]
    bf16: bool
    amx: bool


@dataclass
class GPUDevice:
    index: int
    name: str
    total_memory_mb: float
    capability: str


@dataclass
class AcceleratorInfo:
    available: bool
    reason: str = ""
    version: str = ""
    devices: list[Any] = field(default_factory=list)


@dataclass
class HardwareReport:
    cpu: CPUInfo
    cuda: AcceleratorInfo
    rocm: AcceleratorInfo
    mps: AcceleratorInfo
    openvino: AcceleratorInfo

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def available(self) -> list[str]:
        """Backend names usable for model tests here (cpu always)."""
        out = ["cpu"]
        if self.cuda.available or self.rocm.available:
            out.append("cuda")
        if self.openvino.available:
            out.append("openvino")
        return out


def probe_cpu(cpuinfo: str | None = None, logical: int | None = None, usable: int | None = None) -> CPUInfo:
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    model, flags = platform.processor() or platform.machine(), set()
    physical = set()
    phys_id = None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and value:
            model = value
        elif key in ("flags", "Features"):
            flags.update(value.split())
        elif key == "physical id":
            phys_id = value
        elif key == "core id":
            physical.add((phys_id, value))
    logical = logical if logical is not None else os.cpu_count() or 1
    if usable is None:
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    present = sorted(f for f in ISA_FLAGS if f in flags)
    return CPUInfo(
        model=model,
        arch=platform.machine(),
        logical_cores=logical,
        physical_cores=len(physical) or None,
        usable_cores=usable,
        flags=present,
        bf16="avx512_bf16" in flags or "amx_bf16" in flags,
        amx="amx_tile" in flags,
    )


def _torch():
    try:
        import torch

        return torch
    except ImportError:
        return None


def probe_cuda(torch_mod: Any = "auto") -> AcceleratorInfo:
    torch_mod = _torch() if torch_mod == "auto" else torch_mod
    if torch_mod is None:
        return AcceleratorInfo(False, "torch not installed")
    if getattr(torch_mod.version, "hip", None):
        return AcceleratorInfo(False, "torch is a ROCm build (see rocm)")
    if torch_mod.version.cuda is None:
        return AcceleratorInfo(False, "CPU-only torch build")
    if not torch_mod.cuda.is_available():
        return AcceleratorInfo(False, "no CUDA device visible", version=str(torch_mod.version.cuda))
    return AcceleratorInfo(True, version=str(torch_mod.version.cuda), devices=[asdict(d) for d in _gpu_devices(torch_mod)])


def probe_rocm(torch_mod: Any = "auto") -> AcceleratorInfo:
    torch_mod = _torch() if torch_mod == "auto" else torch_mod
    if torch_mod is None:
        return AcceleratorInfo(False, "torch not installed")
    hip = getattr(torch_mod.version, "hip", None)
    if not hip:
        return AcceleratorInfo(False, "torch is not a ROCm build")
    if not torch_mod.cuda.is_available():
        return AcceleratorInfo(False, "no ROCm device visible", version=str(hip))
    return AcceleratorInfo(True, version=str(hip), devices=[asdict(d) for d in _gpu_devices(torch_mod)])


def _gpu_devices(torch_mod: Any) -> list[GPUDevice]:
    out = []
    for i in range(torch_mod.cuda.device_count()):
        props = torch_mod.cuda.get_device_properties(i)
        out.append(GPUDevice(i, props.name, round(props.total_memory / 2**20, 1), f"{props.major}.{props.minor}"))
    return out


def probe_mps(torch_mod: Any = "auto") -> AcceleratorInfo:
    torch_mod = _torch() if torch_mod == "auto" else torch_mod
    if torch_mod is None:
        return AcceleratorInfo(False, "torch not installed")
    mps = getattr(torch_mod.backends, "mps", None)
    if mps is None or not mps.is_built():
        return AcceleratorInfo(False, "torch built without MPS")
    if not mps.is_available():
        return AcceleratorInfo(False, "MPS built but not available (needs Apple silicon / macOS 12.3+)")
    return AcceleratorInfo(True, devices=["mps"])


def probe_openvino(core: Any = "auto") -> AcceleratorInfo:
    version = ""
    if core == "auto":
        try:
            import openvino as ov

            version = ov.get_version()
            core = ov.Core()
        except ImportError:
            return AcceleratorInfo(False, "openvino not installed")
        except Exception as exc:
            return AcceleratorInfo(False, f"openvino failed to start: {type(exc).__name__}: {exc}")
    try:
        devices = list(core.available_devices)
    except Exception as exc:
        return AcceleratorInfo(False, f"openvino device query failed: {type(exc).__name__}: {exc}", version=version)
    if not devices:
        return AcceleratorInfo(False, "openvino reports no devices", version=version)
    described = []
    for dev in devices:
        try:
            name = core.get_property(dev, "FULL_DEVICE_NAME")
        except Exception:
            name = dev
        described.append({"device": dev, "name": str(name)})
    return AcceleratorInfo(True, version=version, devices=described)


def detect() -> HardwareReport:
    return HardwareReport(cpu=probe_cpu(), cuda=probe_cuda(), rocm=probe_rocm(), mps=probe_mps(), openvino=probe_openvino())
