"""Opt-in fast paths for inference on a GPU: SDPA backend choice, fused QKV projections, channels-last 3D convolutions,
``torch.compile``.

None of them changes the models' weights or what they compute, only how: outputs agree with the plain eager path
within the rounding of the dtype (``tests/test_fast_paths.py`` checks it in bfloat16 on the CPU). They are off by
default because each has a cost or a condition: ``compile`` costs compile time on the first call of every new input
shape (tens of seconds to minutes at the paper's size; PyTorch caches the compiled kernels on disk for later
processes), an SDPA backend that does not support the inputs fails at the first attention call, and channels-last
pays only where cuDNN has channels-last 3D convolution kernels (recent GPUs in bf16 / fp16).
``benchmarks/bench_inference.py`` measures each against the plain eager path of the same run.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

# Names of torch's scaled-dot-product-attention backends (torch.nn.attention.SDPBackend).
ATTENTION_BACKENDS = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "math": SDPBackend.MATH,
}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class FastPaths:
    """Which fast paths are on.

    Attributes:
        attention: one SDPA backend for the transformer's attention (a key of :data:`ATTENTION_BACKENDS`); ``None``
            lets PyTorch choose per call (the default).
        fuse_qkv: one ``(3d, d)`` matmul per attention block instead of three ``(d, d)`` ones (diffusers'
            ``CogVideoXTransformer3DModel.fuse_qkv_projections``: the weights are copied into ``to_qkv``, so they
            take that memory twice; for inference, not for training or saving).
        channels_last: keep the VAEs' 3D convolution weights (and so their activations) in
            ``torch.channels_last_3d`` memory format.
        compile: ``torch.compile`` mode (one of :data:`COMPILE_MODES`) for the transformer network, both VAEs'
            encoder and decoder, and camera recovery's Gauss-Newton iterations (``recover_cameras(compile_mode=)``);
            ``None`` = eager. ``"reduce-overhead"`` and ``"max-autotune"`` add CUDA graphs, which the VAEs do
            without (:attr:`vae_mode`).
        camera_compile: another ``torch.compile`` mode for camera recovery alone (its many small per-frame solves are
            launch-bound, which CUDA graphs, ``"reduce-overhead"``, remove); ``None`` follows ``compile``.
    """

    attention: str | None = None
    fuse_qkv: bool = False
    channels_last: bool = False
    compile: str | None = None
    camera_compile: str | None = None

    def __post_init__(self):
        if self.attention is not None and self.attention not in ATTENTION_BACKENDS:
            raise ValueError(f"attention must be one of {sorted(ATTENTION_BACKENDS)} or None, got {self.attention!r}")
        for name in ("compile", "camera_compile"):
            mode = getattr(self, name)
            if mode is not None and mode not in COMPILE_MODES:
                raise ValueError(f"{name} must be one of {COMPILE_MODES} or None, got {mode!r}")

    @property
    def vae_mode(self) -> str | None:
        """The ``torch.compile`` mode of the VAEs' encoder and decoder: ``compile`` without CUDA graphs.

        diffusers' CogVideoX VAE runs its encoder and decoder once per temporal chunk of a clip and feeds each call's
        causal-convolution cache into the next; a CUDA graph overwrites its outputs on its next replay, so the cache
        would be read after being overwritten (PyTorch raises "accessing tensor output of CUDAGraphs that has been
        overwritten"; measured on an H200, 2026-12-04)."""
        return {"reduce-overhead": "default", "max-autotune": "max-autotune-no-cudagraphs"}.get(self.compile,
                                                                                               self.compile)

    @property
    def camera_mode(self) -> str | None:
        """The ``torch.compile`` mode camera recovery runs with (``camera_compile``, else ``compile``)."""
        return self.camera_compile or self.compile


def attention_context(backend: str | None):
    """Context in which SDPA uses only ``backend`` (a key of :data:`ATTENTION_BACKENDS`); no-op for ``None``."""
    return contextlib.nullcontext() if backend is None else sdpa_kernel([ATTENTION_BACKENDS[backend]])


def set_fused_qkv(network: torch.nn.Module, enabled: bool, fused: bool) -> None:
    """Fuse (``enabled``) or unfuse the QKV projections of a diffusers ``CogVideoXTransformer3DModel`` that is now
    ``fused`` or not; a no-op when it already is as asked. Fusing copies the current q, k, v weights."""
    if enabled and not fused:
        network.fuse_qkv_projections()
    elif fused and not enabled:
        network.unfuse_qkv_projections()


def set_channels_last(modules: list[torch.nn.Module], enabled: bool) -> None:
    """Put the 5-D (Conv3d) and 4-D weights of ``modules`` in channels-last(-3d) memory format, or back to contiguous
    (in place; values unchanged)."""
    for module in modules:
        for parameter in module.parameters():
            if parameter.ndim == 5:
                layout = torch.channels_last_3d if enabled else torch.contiguous_format
            elif parameter.ndim == 4:
                layout = torch.channels_last if enabled else torch.contiguous_format
            else:
                continue
            parameter.data = parameter.data.contiguous(memory_format=layout)


def compile_modules(modules: list[torch.nn.Module], mode: str) -> None:
    """``torch.compile`` each module's forward in place (``Module.compile``: the module, its parameters and its state
    dict keys stay the same objects); compilation itself happens on the first call of each input shape."""
    for module in modules:
        module.compile(mode=mode, dynamic=False)
