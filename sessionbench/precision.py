"""The precision of training's scoring products: fp32, or bf16 where the hardware does it natively.

A full-softmax model (NARM and its variants, Improved GRU4Rec) spends most of a training step in
three products of the batch with every item embedding (``benchmarks/narm_speed.py``). On a CPU
with AVX512_BF16 or AMX, and on a GPU with bf16 tensor cores, those products run 2-4 times
faster with bf16 inputs (accumulated in fp32). ``precision="auto"`` takes bf16 there and fp32
everywhere else; ``"fp32"`` and ``"bf16"`` force one. Only training uses it: evaluation always
scores in fp32, since bf16 scores would tie items that rank apart in fp32.
"""

from __future__ import annotations

import torch

__all__ = ["PRECISIONS", "RESOLVED", "native_bf16", "resolve_precision"]

#: The values of a model's ``precision`` parameter.
PRECISIONS = ("auto", "fp32", "bf16")
#: What ``auto`` resolves to: the precisions a loss computes in.
RESOLVED = ("fp32", "bf16")


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` multiplies bf16 matrices natively (not by emulating them in fp32).

    CPU: the AVX512_BF16 or AMX instructions (what oneDNN's bf16 kernels use); CUDA: a GPU whose
    tensor cores take bf16 (compute capability 8.0 and up).
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``"fp32"`` or ``"bf16"``: what ``precision`` means on ``device``.

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision
