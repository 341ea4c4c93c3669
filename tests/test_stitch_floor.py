"""`benchmarks/bench_stitching.py --windows truth | vae`: windows of true pointmaps stitch into the true camera path,
and their pointmap VAE round trip drifts less than the bundled model's windows."""

import pytest

from repo_modules import load_repo_module
from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.eval.quick import centre_ate
from sora3r.geometry import to_first_frame
from sora3r.pipeline import BUNDLED_MODEL, Sora3RPipeline


@pytest.fixture(scope="module")
def walk():
    """41 frames of held-out test clip 3 (the benchmark's walk), 5 windows at the default overlap."""
    pipeline = Sora3RPipeline.from_pretrained(BUNDLED_MODEL)
    _, height, width = pipeline.clip_shape
    return render_clip(split_seed("test", 3), SyntheticConfig(num_frames=41, height=height, width=width))


def stitched_ate(seq, windows: str | None) -> float:
    pipeline = Sora3RPipeline.from_pretrained(BUNDLED_MODEL)
    if windows is not None:
        load_repo_module("benchmarks", "bench_stitching").use_true_windows(pipeline, seq, windows == "vae")
    reconstruction = pipeline.reconstruct(seq.rgb)
    assert len(reconstruction.metadata["windows"]) == 5
    return centre_ate(reconstruction.c2w, to_first_frame(seq.points, seq.c2w)[1])


def test_true_windows_stitch_exactly_and_the_vae_floor_drifts_less_than_the_model(walk):
    assert stitched_ate(walk, "truth") < 1e-3
    floor, model = stitched_ate(walk, "vae"), stitched_ate(walk, None)
    assert floor < 0.75 * model, (floor, model)  # 0.046 against 0.082 with the bundle of 2026-12-03
