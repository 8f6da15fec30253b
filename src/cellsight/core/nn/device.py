"""Compute-device selection: ``auto`` means CUDA, then Apple MPS, then CPU."""

import functools
import importlib.util

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _has_cuda(torch) -> bool:
    return bool(torch.cuda.is_available())


def _has_mps(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def select_device(name: str = "auto"):
    """Return the ``torch.device`` to compute on.

    Parameters
    ----------
    name : {"auto", "cpu", "cuda", "mps"} or str
        ``auto`` picks CUDA if available, then Apple MPS, then the CPU. An explicit
        name (``"cuda:1"`` included) is honoured if that device exists.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the name is unknown or the requested device is not available here.

    Examples
    --------
    >>> select_device("cpu").type
    'cpu'
    """
    import torch

    name = (name or "auto").strip().lower()
    kind = name.split(":", 1)[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"Unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}.")
    if kind == "auto":
        if _has_cuda(torch):
            return torch.device("cuda")
        if _has_mps(torch):
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not _has_cuda(torch):
        raise ValueError("Device 'cuda' was requested but no CUDA GPU is available here.")
    if kind == "mps" and not _has_mps(torch):
        raise ValueError("Device 'mps' was requested but Apple MPS is not available here.")
    return torch.device(name)


@functools.cache
def native_bf16(device) -> bool:
    """Whether ``device`` computes bfloat16 natively (so autocast to it speeds things up).

    CUDA GPUs that support bf16, and CPUs whose oneDNN has bf16 kernels (AVX-512 BF16 or
    AMX); on other CPUs bf16 is emulated and slower than float32, so this says False.
    """
    import torch

    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        check = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
        try:
            return bool(check is not None and torch.backends.mkldnn.is_available() and check())
        except RuntimeError:
            return False
    return False


def device_summary() -> dict:
    """Describe the compute environment (for ``cellsight info``)."""
    if importlib.util.find_spec("torch") is None:
        return {"torch": "not installed", "auto_device": "cpu"}
    import torch

    info = {
        "torch": torch.__version__,
        "cuda_available": _has_cuda(torch),
        "mps_available": _has_mps(torch),
        "auto_device": str(select_device("auto")),
        "cpu_threads": torch.get_num_threads(),
        "cpu_native_bf16": native_bf16(torch.device("cpu")),
    }
    if info["cuda_available"]:
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info
