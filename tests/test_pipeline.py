"""Sora3RPipeline: loading a model folder, window fusion and the post-processing on the model's output."""

import pytest
import torch

from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.eval.pose import pose_metrics
from sora3r.geometry import PointmapTarget, invert_rigid, to_first_frame, transform_points
from sora3r.models.transformer import JointLatentTransformer
from sora3r.models.vae import build_video_vae
from sora3r.pipeline import Sora3RPipeline, window_starts
from sora3r.train.export import export_model_folder

CLIP = (9, 32, 48)  # frames, height, width of the test model


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    torch.manual_seed(0)
    video_vae, pointmap_vae = build_video_vae("tiny"), build_video_vae("tiny")
    transformer = JointLatentTransformer(latent_channels=16, transformer_kwargs=dict(
        num_layers=1, num_attention_heads=2, attention_head_dim=16, time_embed_dim=32, text_embed_dim=16,
        max_text_seq_length=4))
    folder = tmp_path_factory.mktemp("model") / "tiny"
    export_model_folder(folder, video_vae, pointmap_vae, transformer, *CLIP, squash=True, sampler_steps=2)
    return folder


@pytest.mark.parametrize("num_frames, window, expected", [
    (9, 9, [0]), (17, 9, [0, 8]), (20, 9, [0, 8, 11]), (25, 9, [0, 8, 16]),
])
def test_windows_cover_the_video_and_overlap(num_frames, window, expected):
    assert window_starts(num_frames, window) == expected


def test_too_few_frames_is_a_clear_error():
    with pytest.raises(ValueError, match="needs at least 9"):
        window_starts(5, 9)


def test_reconstruct_runs_end_to_end_and_is_seeded(model_folder):
    pipeline = Sora3RPipeline.from_pretrained(model_folder)
    assert pipeline.clip_shape == CLIP
    frames = render_clip(split_seed("test", 0), SyntheticConfig(num_frames=12, height=64, width=80)).rgb
    rec = pipeline.reconstruct(frames, num_steps=2, seed=3)
    assert rec.points.shape == (12, 32, 48, 3) and rec.depth.shape == (12, 32, 48)
    assert rec.c2w.shape == (12, 4, 4) and rec.K.shape == (3, 3)
    assert rec.rgb.shape == (12, 32, 48, 3) and rec.rgb.dtype == torch.uint8
    assert torch.isfinite(rec.points).all()
    assert torch.equal(rec.c2w[0], torch.eye(4))  # world = camera of the first frame, exactly
    depth_from_points = transform_points(invert_rigid(rec.c2w), rec.points.flatten(1, 2))[..., 2]
    assert torch.allclose(depth_from_points.reshape(rec.depth.shape), rec.depth, rtol=1e-4, atol=1e-4)
    assert rec.metadata["windows"] == [0, 3]
    again = pipeline.reconstruct(frames, num_steps=2, seed=3)
    assert torch.equal(again.points, rec.points)


def test_wrong_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        Sora3RPipeline.from_pretrained(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a sora3r model folder"):
        Sora3RPipeline.from_pretrained(tmp_path / "empty")


def test_perfect_windows_fuse_into_the_true_trajectory(model_folder, monkeypatch):
    """With a model that returned each window's exact normalised pointmaps, the fused cameras are the true ones."""
    seq = render_clip(split_seed("test", 1), SyntheticConfig(num_frames=23, height=32, width=48))
    target = PointmapTarget(squash=False)
    true_points, true_c2w = to_first_frame(seq.points, seq.c2w)

    def exact_window(self, frames, num_steps=None, generator=None):
        start = next(i for i in range(seq.num_frames) if torch.equal(seq.rgb[i:i + len(frames)], frames))
        window = slice(start, start + len(frames))
        points, _ = target.encode(seq.points[window][None], seq.c2w[window][None], seq.valid[window][None])
        return points[0]

    monkeypatch.setattr(Sora3RPipeline, "predict_pointmaps", exact_window)
    rec = Sora3RPipeline.from_pretrained(model_folder).reconstruct(seq.rgb)
    assert rec.metadata["windows"] == [0, 8, 14]
    scores = pose_metrics(rec.c2w, true_c2w)
    extent = (true_c2w[:, :3, 3] - true_c2w[:, None, :3, 3]).norm(dim=-1).max()
    assert scores["ate"] < 1e-3 * extent
    assert scores["rpe_rot"] < 0.05
    assert torch.allclose(rec.K, seq.K, rtol=1e-3)
