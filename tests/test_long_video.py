"""Long videos at flat memory: frames read at the model's size are held once, from the reader to the outputs.

(The memory and time curves themselves are a benchmark, `benchmarks/bench_long_video.py`, not a timed test.)
"""

from __future__ import annotations

import torch
from test_pipeline import CLIP, tiny_pipeline

from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.data.video import resize_and_crop


def test_frames_at_the_target_size_are_not_copied():
    frames = torch.randint(0, 256, (5, 32, 48, 3), dtype=torch.uint8)
    same, affine = resize_and_crop(frames, 32, 48)
    assert same.data_ptr() == frames.data_ptr()
    assert torch.equal(affine, torch.eye(3, dtype=torch.float64))
    resized, _ = resize_and_crop(frames, 16, 24)  # any other size is a new array
    assert resized.data_ptr() != frames.data_ptr() and resized.shape == (5, 16, 24, 3)


def test_frames_read_at_the_model_size_are_held_once_and_reconstruct_the_same():
    pipeline = tiny_pipeline()
    full = render_clip(split_seed("test", 1), SyntheticConfig(num_frames=14, height=64, width=80)).rgb
    at_model_size, _ = resize_and_crop(full, *CLIP[1:])  # what `load_video(..., size=...)` gives `reconstruct`
    rec = pipeline.reconstruct(at_model_size, num_steps=1, seed=0)
    assert rec.rgb.data_ptr() == at_model_size.data_ptr()  # the reconstruction's colours are the read frames
    reference = pipeline.reconstruct(full, num_steps=1, seed=0)
    assert torch.equal(rec.points, reference.points) and torch.equal(rec.c2w, reference.c2w)
