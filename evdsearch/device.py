"""The one place that turns `--device auto|cpu|cuda` into a torch device string."""

from __future__ import annotations

from evdsearch.errors import InvalidInput

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    """True when torch sees a CUDA GPU (PyPI's torch build runs on CPU when none is there)."""
    import torch

    return torch.cuda.is_available()


def resolve_device(device: str = "auto") -> str:
    """`auto` picks cuda when a GPU is visible, else cpu; `cuda` without a GPU is a user error."""
    if device not in DEVICE_CHOICES and not device.startswith("cuda:"):
        raise InvalidInput(f"unknown device {device!r}: use one of {', '.join(DEVICE_CHOICES)}")
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device.startswith("cuda") and not cuda_available():
        raise InvalidInput(f"--device {device} asked for, but torch sees no CUDA GPU; use --device cpu")
    return device
