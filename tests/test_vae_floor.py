"""`benchmarks/bench_vae_floor.py`: the ICL room's ground truth resampled to the model's grid is consistent (camera
recovery gets it exactly), and the bundled pointmap VAE's floor lies below the bundled model's error."""

import pytest
import torch

from repo_modules import load_repo_module
from shared_data import ICL
from sora3r.pipeline import BUNDLED_MODEL, Sora3RPipeline


@pytest.fixture(scope="module")
def floor():
    return load_repo_module("benchmarks", "bench_vae_floor")


@torch.inference_mode()
def test_icl_truth_on_the_model_grid_is_exact_and_the_pointmap_vae_floor_beats_the_model(floor):
    pipeline = Sora3RPipeline.from_pretrained(BUNDLED_MODEL)
    clip = floor.icl_clips(ICL, pipeline.clip_shape)[0]
    assert clip.rgb.shape == (*pipeline.clip_shape, 3) and clip.valid.float().mean() > 0.9
    rows = floor.score_clip(pipeline, clip, steps=4)
    # Points unprojected at 640x480 and picked by the crop's inverse affine: exact up to float32 rounding.
    assert rows["truth"]["abs_rel"] < 1e-3 and rows["truth"]["ate"] < 1e-3
    assert rows["pointmap VAE"]["abs_rel"] < 0.1  # 0.056 on this clip with the bundle of 2026-12-01 (the model: 0.150)
    assert rows["pointmap VAE"]["abs_rel"] < rows["sora3r"]["abs_rel"] / 1.5
    assert 15 < rows["video PSNR"]["psnr_db"] < 40  # 20.4
