"""What a run records about where it ran: commit, package versions, CPU model, accelerator, and the setting a
store must not mix (the device and the thread count: another of either rounds the kernels differently).

Read by :meth:`hansbench.bench.engine.store.ResultsStore.start_run`; nothing here imports the engine.
"""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGES = ("torch", "torchvision", "captum", "zennit", "zennit-crp", "scikit-learn", "numpy", "scipy", "hansbench")


def package_versions() -> dict[str, str]:
    """Python and the versions of the packages whose kernels or code decide the numbers."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def git_commit() -> str:
    """The commit of the hansbench checkout that runs ("" outside a git checkout)."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what :mod:`platform` says), with the architecture."""
    name = ""
    try:
        name = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith(("model name", "Model", "cpu model"))), "")
    except OSError:
        pass
    name = name or platform.processor() or "unknown CPU"
    return f"{name} ({platform.machine()})" if platform.machine() and platform.machine() not in name else name


def accelerator(device: str) -> str:
    """The accelerator's name for a CUDA device ("" on the CPU or when it cannot be asked)."""
    if not str(device).startswith("cuda"):
        return ""
    try:
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    except Exception:  # noqa: BLE001 - provenance never stops a run
        return ""


def setting(device: str, gpu: str, threads: int | None, cpu: str = "") -> str:
    """The words for what a store must not mix: ``cpu (Xeon ...), 1 thread`` / ``cuda (NVIDIA H100), 2 threads``.

    On the CPU the CPU model is part of it: another CPU kind runs other kernels (AVX-512 or not, oneDNN's
    choices), which round differently in the last bits; on an accelerator its name decides.
    """
    kind = str(device or "unknown device").split(":")[0]
    chip = gpu or (cpu if kind == "cpu" else "")
    where = f"{kind} ({chip})" if chip else kind
    if threads is None:
        return f"{where}, threads not recorded"
    return f"{where}, {threads} thread{'s' if threads != 1 else ''}"
