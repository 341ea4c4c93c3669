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


def test_attention_backend_and_channels_last_match_the_eager_path_in_bf16(bf16_pipeline, clip):
    plain = _points(bf16_pipeline, clip)
    bf16_error = (plain - _points(Sora3RPipeline.from_pretrained(None), clip)).norm(dim=-1)  # bf16's own rounding
    assert float(bf16_error.mean()) > 0
    for fast in (FastPaths(attention="math"), FastPaths(attention="flash"), FastPaths(channels_last=True)):
        bf16_pipeline.enable_fast_paths(fast)
        try:
            if fast.channels_last:
                conv = bf16_pipeline.pointmap_vae.decoder.conv_in.conv.weight
                assert conv.ndim == 5 and conv.is_contiguous(memory_format=torch.channels_last_3d)
            points = _points(bf16_pipeline, clip)
        finally:
            bf16_pipeline.enable_fast_paths(FastPaths())
        # within bf16 rounding: on average no further from the plain bf16 path than that is from float32, and nowhere
        # more than twice as far (measured at 17x64x96: mean 0.0023-0.0024 vs 0.0031, max 0.017-0.020 vs 0.018; points ~1 in size)
        difference = (points - plain).norm(dim=-1)
        assert float(difference.mean()) <= float(bf16_error.mean()), fast
        assert float(difference.max()) <= 2 * float(bf16_error.max()), fast
    weight = bf16_pipeline.pointmap_vae.decoder.conv_in.conv.weight
    assert weight.is_contiguous() and torch.equal(_points(bf16_pipeline, clip), plain)  # switched back off


def test_fast_path_options_are_checked():
    with pytest.raises(ValueError, match="attention"):
        FastPaths(attention="fastest")
    with pytest.raises(ValueError, match="compile"):
        FastPaths(compile="turbo")
