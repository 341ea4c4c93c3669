"""Window stitching: the robust Sim(3) recovers a known similarity where a plain Umeyama fit is pulled off by
outliers and by far points, windows cover a video with the asked overlap, and the frames a window shares come back in
the frame the model predicts that window in."""

from __future__ import annotations

import pytest
import torch
from evo.core.lie_algebra import so3_log_angle
from scipy.spatial.transform import Rotation

from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.geometry import PointmapTarget, apply_sim3, umeyama
from sora3r.geometry.stitch import (blend_shared, default_overlap, robust_sim3, shared_in_window_frame,
                                    window_starts)


def known_similarity(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rotation = torch.from_numpy(Rotation.random(random_state=seed).as_matrix())
    return torch.tensor(1.7, dtype=torch.float64), rotation, torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)


def rotation_error_deg(a: torch.Tensor, b: torch.Tensor) -> float:
    return so3_log_angle((a.T @ b).double().numpy(), degrees=True)


def scene(n: int, generator: torch.Generator) -> torch.Tensor:
    """Points in front of a camera at the origin, depths 0.5 .. 20 (a room with a window to far buildings)."""
    depth = 0.5 + 19.5 * torch.rand(n, generator=generator, dtype=torch.float64) ** 3
    xy = (torch.rand(n, 2, generator=generator, dtype=torch.float64) - 0.5) * 1.5
    return torch.cat([xy * depth[:, None], depth[:, None]], dim=-1)


def test_robust_sim3_resists_outliers_and_far_point_noise():
    g = torch.Generator().manual_seed(0)
    source = scene(20_000, g)
    s, R, t = known_similarity(1)
    clean = target = apply_sim3(s, R, t, source)
    # Noise that grows with distance (2 % of depth, split between the two sides: both windows' pointmaps are
    # predictions), plus 30 % gross outliers.
    exact, distance = source, source.norm(dim=-1, keepdim=True)
    source = source + 0.0141 * distance * torch.randn(source.shape, generator=g, dtype=torch.float64)
    target = target + 0.0141 * s * distance * torch.randn(source.shape, generator=g, dtype=torch.float64)
    outliers = torch.rand(len(source), generator=g) < 0.3
    target[outliers] += 5.0 * torch.randn(int(outliers.sum()), 3, generator=g, dtype=torch.float64)

    s_hat, R_hat, t_hat = robust_sim3(source, target)
    assert abs(float(s_hat / s) - 1) < 0.01
    assert rotation_error_deg(R_hat, R) < 0.3
    assert float((t_hat - t).norm()) < 0.05

    def median_relative_error(fit) -> float:
        return float(((apply_sim3(*fit, exact) - clean).norm(dim=-1) / clean.norm(dim=-1)).median())

    plain = umeyama(source, target)  # the least-squares fit this replaces is pulled off by outliers and far points
    assert median_relative_error((s_hat, R_hat, t_hat)) < 0.001
    assert median_relative_error(plain) > 10 * median_relative_error((s_hat, R_hat, t_hat))
    assert rotation_error_deg(plain[1], R) > 5 * rotation_error_deg(R_hat, R)


def test_robust_sim3_uses_prior_weights_and_rejects_too_few_points():
    g = torch.Generator().manual_seed(1)
    source = scene(1000, g)
    s, R, t = known_similarity(2)
    target = apply_sim3(s, R, t, source)
    target[:600] = torch.randn(600, 3, generator=g, dtype=torch.float64) * 10  # 60 % garbage, known invalid
    weights = torch.ones(1000, dtype=torch.float64)
    weights[:600] = 0
    s_hat, R_hat, t_hat = robust_sim3(source, target, weights)
    torch.testing.assert_close(s_hat, s, rtol=1e-6, atol=0)
    torch.testing.assert_close(t_hat, t, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="fewer than 3"):
        robust_sim3(source[:2], target[:2])


def test_blend_shared_ramps_from_placed_to_incoming():
    placed, incoming = torch.zeros(4, 2, 2, 3), torch.ones(4, 2, 2, 3)
    blended = blend_shared(placed, incoming)
    torch.testing.assert_close(blended[:, 0, 0, 0], torch.tensor([0.2, 0.4, 0.6, 0.8]))


@pytest.mark.parametrize("num_frames, window, overlap", [(17, 17, 4), (257, 17, 5), (100, 17, 8), (18, 17, 1)])
def test_window_starts_cover_the_video_with_the_overlap(num_frames, window, overlap):
    starts = window_starts(num_frames, window, overlap)
    assert starts[0] == 0 and starts[-1] + window == num_frames
    assert all(b - a <= window - overlap for a, b in zip(starts, starts[1:]))
    assert all(b > a for a, b in zip(starts, starts[1:]))
    with pytest.raises(ValueError, match="overlap"):
        window_starts(num_frames, window, window)
    with pytest.raises(ValueError, match="1 frame;"):
        window_starts(1, window, overlap)


def test_default_overlap_is_two_thirds_of_any_window():
    """11 of the bundled model's 17 frames, 6 of a 9-frame model's, 33 of the paper's 49; always a valid overlap."""
    assert [default_overlap(window) for window in (17, 9, 49)] == [11, 6, 33]
    for window in range(2, 66):
        overlap = default_overlap(window)
        assert 1 <= overlap < window and abs(overlap - 2 * window / 3) <= 0.5
        window_starts(3 * window, window, overlap)  # accepted


def test_shared_frames_come_back_as_the_model_predicts_their_window():
    """Frames 6-10 of a clip, placed in another world at another scale, come back as the normalised target of the
    window that starts at frame 6 would begin (frame 6's camera at the origin, unit mean distance over them)."""
    seq = render_clip(split_seed("test", 1), SyntheticConfig(num_frames=17, height=32, width=48))
    shared = slice(6, 11)
    expected, _ = PointmapTarget(squash=False).encode(seq.points[shared], seq.c2w[shared], None)
    scale, rotation, translation = known_similarity(4)
    placed = apply_sim3(scale.float(), rotation.float(), translation.float(), seq.points[shared])
    local = shared_in_window_frame(placed)
    error = (local - expected).norm(dim=-1)
    assert float(error.mean()) < 1e-3 * float(expected.norm(dim=-1).mean()), float(error.mean())
