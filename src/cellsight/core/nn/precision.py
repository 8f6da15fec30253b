"""The one mixed-precision policy for training and prediction.

Training runs in bfloat16 autocast where the device computes bfloat16 natively (CUDA GPUs
with bf16, CPUs whose oneDNN has bf16 kernels); elsewhere emulated bf16 would be slower,
so it stays float32. Prediction uses autocast only on CUDA (bfloat16, float16 on GPUs
without bf16): on the CPU it stays float32 so tiled and blockwise predictions match the
untiled ones to float32 rounding.
"""

import torch

from cellsight.core.nn.device import native_bf16


def autocast_dtype(device: torch.device, enabled: bool = True, training: bool = True):
    """The autocast dtype the policy picks, or None for plain float32.

    Parameters
    ----------
    device : torch.device
        Where the computation runs.
    enabled : bool
        The user's mixed-precision switch (``False`` always gives float32).
    training : bool
        Training (True) or prediction (False).

    Returns
    -------
    torch.dtype or None

    Examples
    --------
    >>> autocast_dtype(torch.device("cpu"), enabled=False) is None
    True
    >>> autocast_dtype(torch.device("cpu"), training=False) is None
    True
    """
    if not enabled:
        return None
    if training:
        return torch.bfloat16 if native_bf16(device) else None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def autocast(device: torch.device, enabled: bool = True, training: bool = True):
    """Autocast context following :func:`autocast_dtype` (a disabled one for float32).

    Examples
    --------
    >>> with autocast(torch.device("cpu"), training=False):
    ...     (torch.ones(2) * 2).dtype
    torch.float32
    """
    dtype = autocast_dtype(device, enabled, training)
    if dtype is None:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)
