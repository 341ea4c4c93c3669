"""Opt-in fast paths (`sora3r.models.fast`): same outputs as the plain eager path within bfloat16 rounding."""

from __future__ import annotations

import pytest
import torch

from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.models.fast import FastPaths
from sora3r.pipeline import Sora3RPipeline


@pytest.fixture(scope="module")
def bf16_pipeline():
    return Sora3RPipeline.from_pretrained(None, dtype=torch.bfloat16)


@pytest.fixture(scope="module")
def clip():
    # A 9x32x48 clip, not the model's 17x64x96 (its weights run on any 8k+1 frames and multiple of 16 pixels): on a
    # CPU without native bfloat16 (AVX2 only, e.g. the AMD EPYC of 2026-12-01) one bf16 window of 17x64x96 takes 202 s
    # in the VAEs' 3D convolutions, this one 6 s.
    return render_clip(split_seed("test", 3), SyntheticConfig(num_frames=9, height=32, width=48)).rgb


def _points(pipeline: Sora3RPipeline, frames: torch.Tensor) -> torch.Tensor:
    return pipeline.predict_pointmaps(frames, generator=torch.Generator().manual_seed(0))[0]


def test_attention_backend_fused_qkv_and_channels_last_match_the_eager_path_in_bf16(bf16_pipeline, clip):
    plain = _points(bf16_pipeline, clip)
    exact = _points(Sora3RPipeline.from_pretrained(None), clip)  # float32
    bf16_error = (plain - exact).norm(dim=-1)  # bf16's own rounding
    assert float(bf16_error.mean()) > 0
    network = bf16_pipeline.transformer.transformer
    for fast in (FastPaths(attention="math"), FastPaths(attention="flash"), FastPaths(fuse_qkv=True),
                 FastPaths(channels_last=True)):
        bf16_pipeline.enable_fast_paths(fast)
        try:
            processors = {type(processor).__name__ for processor in network.attn_processors.values()}
            assert processors == {"FusedCogVideoXAttnProcessor2_0" if fast.fuse_qkv else "CogVideoXAttnProcessor2_0"}
            if fast.channels_last:
                conv = bf16_pipeline.pointmap_vae.decoder.conv_in.conv.weight
                assert conv.ndim == 5 and conv.is_contiguous(memory_format=torch.channels_last_3d)
            points = _points(bf16_pipeline, clip)
        finally:
            bf16_pipeline.enable_fast_paths(FastPaths())
        # within bf16 rounding: as far from the float32 path as the plain bf16 path is, up to a small factor. The
        # sampler carries rounding differences from step to step, so a fast path's points differ from the plain
        # path's by about as much as both differ from float32 (bundle of 2026-12-02 at 9x32x48, mean / max distance
        # to float32: plain 0.0065 / 0.076, math attention 0.0125 / 0.111, flash = plain on the CPU, channels-last
        # 0.0072 / 0.127; fused QKV = plain on the CPU, bundle of 2026-12-03; points ~1 in size)
        error = (points - exact).norm(dim=-1)
        assert float(error.mean()) <= 2.5 * float(bf16_error.mean()), fast
        assert float(error.max()) <= 2.5 * float(bf16_error.max()), fast
    weight = bf16_pipeline.pointmap_vae.decoder.conv_in.conv.weight
    assert weight.is_contiguous() and torch.equal(_points(bf16_pipeline, clip), plain)  # switched back off


def test_fast_path_options_are_checked():
    with pytest.raises(ValueError, match="attention"):
        FastPaths(attention="fastest")
    with pytest.raises(ValueError, match="compile"):
        FastPaths(compile="turbo")
    with pytest.raises(ValueError, match="camera_compile"):
        FastPaths(camera_compile="turbo")
    assert FastPaths(compile="default").camera_mode == "default"
    assert FastPaths(compile="default", camera_compile="reduce-overhead").camera_mode == "reduce-overhead"
    assert FastPaths(camera_compile="reduce-overhead").camera_mode == "reduce-overhead"
    # the VAEs' chunked calls feed each output into the next call, which a CUDA graph would overwrite
    assert FastPaths(compile="reduce-overhead").vae_mode == "default"
    assert FastPaths(compile="max-autotune").vae_mode == "max-autotune-no-cudagraphs"
    assert FastPaths(compile="default").vae_mode == "default" and FastPaths().vae_mode is None
