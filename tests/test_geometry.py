"""Tests of sora3r.geometry: training target, camera recovery from pointmaps, alignment."""

from __future__ import annotations

import math

import pytest
import torch

from sora3r.geometry import (
    PointmapTarget,
    align_depth,
    apply_sim3,
    first_camera_world,
    invert_rigid,
    linear_cameras,
    normalize_scale,
    recover_cameras,
    recover_cameras_streamed,
    squash,
    to_first_frame,
    transform_points,
    umeyama,
    unsquash,
)
from sora3r.geometry.projection import pixel_directions, ray_centres


def random_rotation(generator: torch.Generator, n: int, angle: float, dtype=torch.float64) -> torch.Tensor:
    """``(n, 3, 3)`` rotations about random axes by random angles up to ``angle`` radians (Rodrigues)."""
    axis = torch.nn.functional.normalize(torch.randn(n, 3, generator=generator, dtype=dtype), dim=-1)
    theta = angle * torch.rand(n, 1, 1, generator=generator, dtype=dtype)
    zero = torch.zeros(n, dtype=dtype)
    skew = torch.stack(
        [zero, -axis[:, 2], axis[:, 1], axis[:, 2], zero, -axis[:, 0], -axis[:, 1], axis[:, 0], zero], -1
    ).reshape(n, 3, 3)
    return torch.eye(3, dtype=dtype) + theta.sin() * skew + (1 - theta.cos()) * skew @ skew


def make_clip(seed: int, frames: int = 5, height: int = 48, width: int = 64, principal_point=None):
    """Unproject smooth random depth (2..6) with a random focal through a random smooth trajectory.

    Returns float32 ``points (T,H,W,3)`` (world), ``depth (T,H,W)``, ``K (3,3)``, ``c2w (T,4,4)``.
    """
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(frames, 1, 4, 5, generator=g, dtype=torch.float64)
    depth = 2 + 4 * torch.nn.functional.interpolate(low, size=(height, width), mode="bicubic", align_corners=True)
    depth = depth[:, 0].clamp(min=1.5)
    focal = (0.6 + 0.9 * torch.rand((), generator=g, dtype=torch.float64)) * width
    cx, cy = principal_point if principal_point is not None else ((width - 1) / 2, (height - 1) / 2)
    K = torch.tensor([[focal, 0, cx], [0, focal, cy], [0, 0, 1]], dtype=torch.float64)
    c2w = torch.eye(4, dtype=torch.float64).repeat(frames, 1, 1)
    steps = random_rotation(g, frames, 0.15)
    rotation = torch.eye(3, dtype=torch.float64)
    for t in range(frames):
        rotation = steps[t] @ rotation
        c2w[t, :3, :3] = rotation
    c2w[:, :3, 3] = 0.3 * torch.randn(frames, 3, generator=g, dtype=torch.float64).cumsum(0)
    v, u = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64), indexing="ij")
    rays = torch.stack([(u - cx) / focal, (v - cy) / focal, torch.ones_like(u)], -1)
    camera = (rays * depth[..., None]).reshape(frames, -1, 3)
    points = transform_points(c2w, camera).reshape(frames, height, width, 3)
    return points.float(), depth.float(), K.float(), c2w.float()


def corrupt(points: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace ``fraction`` of the pixels by points uniform in the clip's bounding box; returns (points, outlier mask)."""
    g = torch.Generator().manual_seed(seed)
    outlier = torch.rand(points.shape[:-1], generator=g) < fraction
    flat = points.reshape(-1, 3)
    low, high = flat.min(0).values, flat.max(0).values
    garbage = low + (high - low) * torch.rand(points.shape, generator=g)
    return torch.where(outlier[..., None], garbage, points), outlier


def pose_error(c2w_est: torch.Tensor, c2w_true: torch.Tensor, points: torch.Tensor) -> float:
    """Largest pose difference (rotation entries and translation / scene scale) after moving both to frame-0 world."""
    _, est = to_first_frame(points, c2w_est)
    _, true = to_first_frame(points, c2w_true)
    scene_scale = (points - c2w_true[:, None, None, :3, 3]).norm(dim=-1).mean()
    rotation = (est[..., :3, :3] - true[..., :3, :3]).abs().max()
    translation = (est[..., :3, 3] - true[..., :3, 3]).norm(dim=-1).max() / scene_scale
    return float(max(rotation, translation))


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / b.abs()).max())


# ---------------------------------------------------------------- target


def test_to_first_frame_makes_frame_zero_the_world_and_keeps_camera_coordinates():
    points, _, _, c2w = make_clip(0, frames=3, height=8, width=10)
    points, c2w = points.double(), c2w.double()
    new_points, new_c2w = to_first_frame(points, c2w)
    assert torch.allclose(new_c2w[0], torch.eye(4, dtype=torch.float64), atol=1e-12)
    before = transform_points(invert_rigid(c2w), points.reshape(3, -1, 3))
    after = transform_points(invert_rigid(new_c2w), new_points.reshape(3, -1, 3))
    assert torch.allclose(before, after, atol=1e-10)
    # leading batch dims broadcast
    batched_points, batched_c2w = to_first_frame(points[None].repeat(2, 1, 1, 1, 1), c2w[None].repeat(2, 1, 1, 1))
    assert torch.allclose(batched_points[1], new_points) and torch.allclose(batched_c2w[1], new_c2w)


def test_normalize_scale_uses_valid_points_per_clip():
    g = torch.Generator().manual_seed(1)
    points = torch.randn(2, 3, 4, 5, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 7.0]).view(2, 1, 1, 1, 1)
    valid = torch.rand(2, 3, 4, 5, generator=g) > 0.3
    points[~valid] = 1e6  # invalid pixels must not count
    normalized, scale = normalize_scale(points, valid)
    assert scale.shape == (2,)
    mean_distance = torch.stack([normalized[b][valid[b]].norm(dim=-1).mean() for b in range(2)])
    assert torch.allclose(mean_distance, torch.ones(2, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(normalized * scale.view(2, 1, 1, 1, 1), points)
    with pytest.raises(ValueError, match="no valid"):
        normalize_scale(points, torch.zeros_like(valid))


def test_squash_inverts_exactly_is_monotone_and_safe_at_zero():
    g = torch.Generator().manual_seed(2)
    p = torch.randn(1000, 3, generator=g, dtype=torch.float64) * torch.logspace(-6, 3, 1000, dtype=torch.float64)[:, None]
    assert torch.allclose(unsquash(squash(p)), p, rtol=1e-12, atol=1e-15)
    p32 = p.float()
    assert torch.allclose(unsquash(squash(p32)), p32, rtol=1e-5, atol=1e-7)
    radius = torch.linspace(0, 50, 501, dtype=torch.float64)
    squashed = squash(radius[:, None] * torch.tensor([0.6, 0.0, 0.8], dtype=torch.float64)).norm(dim=-1)
    assert bool((squashed.diff() > 0).all())
    assert torch.allclose(squashed, torch.log1p(radius))
    zero = torch.zeros(2, 3, requires_grad=True)
    out = squash(zero)
    out.sum().backward()
    assert torch.equal(out, torch.zeros(2, 3)) and torch.isfinite(zero.grad).all()
    assert torch.equal(unsquash(torch.zeros(4, 3)), torch.zeros(4, 3))


@pytest.mark.parametrize("use_squash", [False, True])
def test_pointmap_target_round_trip(use_squash):
    points, _, _, c2w = make_clip(3, frames=3, height=8, width=10)
    points, c2w = points.double()[None], c2w.double()[None]
    valid = torch.ones(points.shape[:-1], dtype=torch.bool)
    target_spec = PointmapTarget(squash=use_squash)
    target, scale = target_spec.encode(points, c2w, valid)
    expected, _ = to_first_frame(points, c2w)
    assert torch.allclose(target_spec.decode(target) * scale.view(-1, 1, 1, 1, 1), expected, atol=1e-10)
    assert torch.allclose(target_spec.decode(target).norm(dim=-1).mean(), torch.tensor(1.0, dtype=torch.float64))
    if use_squash:
        assert float(target.norm(dim=-1).max()) < float(target_spec.decode(target).norm(dim=-1).max())
    with pytest.raises(AttributeError):
        target_spec.squash = not use_squash


# ---------------------------------------------------------------- cameras


def test_recover_cameras_exact_on_clean_pointmaps():
    clips = [make_clip(seed) for seed in (10, 11)]
    points = torch.stack([c[0] for c in clips])
    estimate = recover_cameras(points)
    assert estimate.K.shape == (2, 3, 3) and estimate.c2w.shape == (2, 5, 4, 4) and estimate.depth.shape == (2, 5, 48, 64)
    for b, (clip_points, depth, K, c2w) in enumerate(clips):
        assert relative(estimate.focal[b], K[0, 0]) < 1e-3
        assert torch.allclose(estimate.K[b, :2, 2], torch.tensor([31.5, 23.5]))
        assert pose_error(estimate.c2w[b], c2w, clip_points) < 1e-3
        assert relative(estimate.depth[b], depth) < 1e-3


def test_ray_centres_are_the_true_camera_centres_and_move_with_the_points():
    points, _, K, c2w = make_clip(12)
    directions = pixel_directions(c2w[:, :3, :3] @ torch.linalg.inv(K), *points.shape[1:3]).flatten(1, 2)
    flat = points.flatten(1, 2)
    weights = torch.rand(flat.shape[:-1], generator=torch.Generator().manual_seed(0))
    centres = ray_centres(flat, directions, weights)
    assert (centres - c2w[:, :3, 3]).norm(dim=-1).max() < 1e-3
    # A frame's points shifted by d put its centre d away; other frames keep theirs.
    shift = torch.tensor([0.2, -0.1, 0.5])
    moved = ray_centres(flat + torch.tensor([[0.0], [1.0], [0.0], [0.0], [0.0]])[..., None] * shift, directions, weights)
    assert torch.allclose(moved[1] - centres[1], shift, atol=1e-3)
    assert torch.allclose(moved[[0, 2, 3, 4]], centres[[0, 2, 3, 4]], atol=1e-5)
    # Scaling a frame's points about its true centre leaves the centre where it is (depth alone does not move it).
    scaled = c2w[:, None, :3, 3] + 1.7 * (flat - c2w[:, None, :3, 3])
    assert (ray_centres(scaled, directions, weights) - c2w[:, :3, 3]).norm(dim=-1).max() < 1e-3


def test_recover_cameras_robust_to_30_percent_outliers():
    points, depth, K, c2w = make_clip(12, frames=6)
    corrupted, outlier = corrupt(points, 0.3, seed=0)
    estimate = recover_cameras(corrupted)
    # measured: focal ~1e-7, poses ~1e-6 of scene scale; asserted with margin
    assert relative(estimate.focal, K[0, 0]) < 1e-3
    assert pose_error(estimate.c2w, c2w, points) < 1e-3
    assert relative(estimate.depth[~outlier], depth[~outlier]) < 1e-3
    # the plain least-squares baseline is not robust
    baseline = linear_cameras(corrupted)
    assert relative(baseline.focal, K[0, 0]) > 1e-2 or pose_error(baseline.c2w, c2w, points) > 1e-2


def test_recover_cameras_outliers_and_noise_within_one_percent():
    points, depth, K, c2w = make_clip(13, frames=6)
    g = torch.Generator().manual_seed(5)
    noisy = points + 0.01 * depth[..., None] * torch.randn(points.shape, generator=g)  # 1 % of depth
    corrupted, outlier = corrupt(noisy, 0.3, seed=1)
    estimate = recover_cameras(corrupted)
    assert relative(estimate.focal, K[0, 0]) < 1e-2
    assert pose_error(estimate.c2w, c2w, points) < 1e-2
    assert float(((estimate.depth - depth).abs() / depth)[~outlier].median()) < 2e-2


def test_recover_cameras_known_intrinsics_and_principal_point():
    points, depth, K, c2w = make_clip(14, principal_point=(30.0, 20.0))
    corrupted, outlier = corrupt(points, 0.3, seed=2)
    known = recover_cameras(corrupted, K=K)
    assert torch.equal(known.K, K)
    assert pose_error(known.c2w, c2w, points) < 1e-3
    assert relative(known.depth[~outlier], depth[~outlier]) < 1e-3
    given_centre = recover_cameras(corrupted, principal_point=(30.0, 20.0))
    assert torch.allclose(given_centre.K[:2, 2], torch.tensor([30.0, 20.0]))
    assert relative(given_centre.focal, K[0, 0]) < 1e-3
    assert pose_error(given_centre.c2w, c2w, points) < 1e-3


def test_confidence_weights_that_zero_outliers_give_the_exact_answer():
    points, depth, K, c2w = make_clip(15)
    corrupted, outlier = corrupt(points, 0.4, seed=3)
    corrupted[0, :5, :5] = float("nan")  # non-finite points are ignored too
    estimate = recover_cameras(corrupted, weights=(~outlier).float())
    assert relative(estimate.focal, K[0, 0]) < 1e-5
    assert pose_error(estimate.c2w, c2w, points) < 1e-5
    exact = ~outlier & torch.isfinite(corrupted).all(-1)
    assert relative(estimate.depth[exact], depth[exact]) < 1e-5
    linear = linear_cameras(corrupted, weights=(~outlier).float())
    assert relative(linear.focal, K[0, 0]) < 1e-3 and pose_error(linear.c2w, c2w, points) < 1e-3


def test_batched_equals_per_clip():
    clips = [corrupt(make_clip(seed)[0], 0.3, seed)[0] for seed in (20, 21, 22)]
    batched = recover_cameras(torch.stack(clips))
    for b, clip in enumerate(clips):
        single = recover_cameras(clip)
        assert torch.allclose(batched.K[b], single.K, rtol=1e-5)
        assert torch.allclose(batched.c2w[b], single.c2w, atol=1e-5)
        assert torch.allclose(batched.depth[b], single.depth, rtol=1e-5, atol=1e-5)


def test_recover_cameras_on_synthetic_clips():
    from sora3r.data.synthetic import SyntheticConfig, render_batch

    clips = render_batch([0, 1, 2], SyntheticConfig(num_frames=5, height=48, width=64))
    corrupted, outlier = corrupt(clips.points, 0.3, seed=4)
    for points in (clips.points, corrupted):
        estimate = recover_cameras(points)
        inlier = ~outlier if points is corrupted else torch.ones_like(outlier)
        for b in range(3):
            assert relative(estimate.focal[b], clips.K[b, 0, 0]) < 1e-3
            assert pose_error(estimate.c2w[b], clips.c2w[b], clips.points[b]) < 1e-3
            assert relative(estimate.depth[b][inlier[b]], clips.depth[b][inlier[b]]) < 1e-3


def test_chunked_refinement_equals_one_pass(monkeypatch):
    """Frames are refined a chunk at a time to bound memory; the result must not depend on the chunking."""
    from sora3r.geometry import cameras

    points = corrupt(make_clip(17, frames=6)[0], 0.3, seed=7)[0]
    whole = recover_cameras(points)
    monkeypatch.setattr(cameras, "GAUSS_NEWTON_CHUNK_PIXELS", 1)  # one frame at a time
    chunked = recover_cameras(points)
    assert torch.allclose(chunked.c2w, whole.c2w, atol=1e-6) and torch.allclose(chunked.K, whole.K, rtol=1e-6)


@pytest.mark.parametrize("known_K", [False, True])
def test_long_clips_fit_the_focal_on_a_subset_and_poses_in_chunks(known_K):
    """Clips longer than ``focal_frames`` (step 4 of the method): the same cameras as the joint fit of all frames."""
    clips = [make_clip(seed, frames=7, principal_point=(30.0, 20.0)) for seed in (30, 31)]
    points = torch.stack([corrupt(c[0], 0.3, seed)[0] for seed, c in zip((8, 9), clips)])  # (2, 7, H, W, 3)
    given = {"K": torch.stack([c[2] for c in clips])} if known_K else {"principal_point": (30.0, 20.0)}
    joint = recover_cameras(points, **given)
    long = recover_cameras(points, focal_frames=3, **given)  # focal from frames 0, 3, 6; poses 3 frames at a time
    assert long.c2w.shape == (2, 7, 4, 4) and long.depth.shape == points.shape[:-1]
    for b, (clip_points, depth, true_K, c2w) in enumerate(clips):
        assert relative(long.focal[b], true_K[0, 0]) < 1e-3
        assert torch.allclose(long.K[b, :2, 2], torch.tensor([30.0, 20.0]))
        assert pose_error(long.c2w[b], c2w, clip_points) < 1e-3
    assert torch.allclose(long.c2w, joint.c2w, atol=1e-4) and torch.allclose(long.K, joint.K, rtol=1e-4)
    single = recover_cameras(points[0], focal_frames=3, **({"K": clips[0][2]} if known_K else {}))  # unbatched
    assert single.c2w.shape == (7, 4, 4) and single.K.shape == (3, 3)
    # The same clip read a chunk at a time (long videos whose pointmaps stay in a file): the same cameras, and no
    # more than focal_frames frames read at once.
    reads = []
    weights = torch.rand(points.shape[1:-1], generator=torch.Generator().manual_seed(0)) + 0.5
    def read(frames):
        reads.append(len(range(7)[frames]) if isinstance(frames, slice) else len(frames))
        return points[0][frames], weights[frames]
    streamed = recover_cameras_streamed(read, 7, focal_frames=3, **({"K": clips[0][2]} if known_K else {}))
    reference = recover_cameras(points[0], weights, focal_frames=3, **({"K": clips[0][2]} if known_K else {}))
    assert max(reads) == 3
    for name in ("c2w", "depth", "K"):
        torch.testing.assert_close(getattr(streamed, name), getattr(reference, name))
    with pytest.raises(ValueError, match="focal_frames"):
        recover_cameras(points, focal_frames=0)
    with pytest.raises(ValueError, match="weights"):
        recover_cameras(points, weights=torch.ones(2, 7, 5, 5), focal_frames=3)


def test_compiled_gauss_newton_gives_the_eager_cameras():
    """``compile_mode`` runs the same arithmetic in fused kernels: the same cameras and depth as eager, with the
    focal estimated and with K known (measured on this CPU: identical to 1e-12)."""
    points, depth, K, c2w = make_clip(18, frames=6)
    corrupted, outlier = corrupt(points, 0.3, seed=8)
    for known in (None, K):
        eager = recover_cameras(corrupted, K=known)
        compiled = recover_cameras(corrupted, K=known, compile_mode="default")
        assert torch.allclose(compiled.K, eager.K, rtol=1e-5)
        assert torch.allclose(compiled.c2w, eager.c2w, atol=1e-5)
        assert torch.allclose(compiled.depth, eager.depth, rtol=1e-5, atol=1e-5)
        assert pose_error(compiled.c2w, c2w, points) < 1e-3


def test_first_camera_world_makes_the_first_recovered_camera_exactly_the_identity():
    """Points whose world is a few degrees and centimetres off their first camera (as a model's prediction is)."""
    points, depth, K, c2w = make_clip(16, frames=4)
    batch = torch.stack([points, corrupt(points, 0.2, seed=6)[0]])  # (2, T, H, W, 3)
    cameras = recover_cameras(batch)
    assert (cameras.c2w[:, 0] - torch.eye(4)).abs().max() > 1e-2  # make_clip's world is not the first camera
    moved, rebased = first_camera_world(batch, cameras)
    assert torch.equal(rebased.c2w[:, 0], torch.eye(4).expand(2, 4, 4))
    assert torch.equal(rebased.K, cameras.K) and torch.equal(rebased.depth, cameras.depth)
    # Each pixel keeps its camera coordinates (so depth and reprojection are unchanged) ...
    before = transform_points(invert_rigid(cameras.c2w), batch.flatten(2, 3))
    after = transform_points(invert_rigid(rebased.c2w), moved.flatten(2, 3))
    assert (before - after).abs().max() < 1e-4
    # ... and relative poses do not change.
    relative_before = invert_rigid(cameras.c2w[:, :1]) @ cameras.c2w
    assert (relative_before - rebased.c2w).abs().max() < 1e-5


def test_recover_cameras_rejects_bad_input():
    points = make_clip(0, frames=2, height=8, width=8)[0]
    with pytest.raises(ValueError, match="points must be"):
        recover_cameras(points[0])
    with pytest.raises(ValueError, match="weights"):
        recover_cameras(points, weights=torch.ones(2, 8, 7))
    weights = torch.ones(2, 8, 8)
    weights[1] = 0
    with pytest.raises(ValueError, match="usable pixels"):
        recover_cameras(points, weights=weights)
    with pytest.raises(ValueError, match="either K or principal_point"):
        recover_cameras(points, K=torch.eye(3), principal_point=(3.5, 3.5))
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        recover_cameras(points, compile_mode="turbo")


# ---------------------------------------------------------------- alignment


def test_umeyama_recovers_a_known_sim3():
    g = torch.Generator().manual_seed(4)
    src = torch.randn(200, 3, generator=g, dtype=torch.float64)
    rotation = random_rotation(g, 1, math.pi)[0]
    translation = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    dst = apply_sim3(torch.tensor(2.5, dtype=torch.float64), rotation, translation, src)
    scale, r, t = umeyama(src, dst)
    assert abs(float(scale) - 2.5) < 1e-10
    assert torch.allclose(r, rotation, atol=1e-10) and torch.allclose(t, translation, atol=1e-10)
    # zero-weighted garbage is ignored; rigid fit keeps s = 1
    weights = torch.ones(200, dtype=torch.float64)
    dst_bad = dst.clone()
    dst_bad[:50] = 100 * torch.randn(50, 3, generator=g, dtype=torch.float64)
    weights[:50] = 0
    scale, r, t = umeyama(src, dst_bad, weights=weights)
    assert abs(float(scale) - 2.5) < 1e-10 and torch.allclose(r, rotation, atol=1e-10)
    rigid_dst = apply_sim3(torch.tensor(1.0, dtype=torch.float64), rotation, translation, src)
    scale, r, t = umeyama(src, rigid_dst, with_scale=False)
    assert float(scale) == 1.0 and torch.allclose(r, rotation, atol=1e-10) and torch.allclose(t, translation, atol=1e-10)
    assert abs(float(torch.linalg.det(r)) - 1) < 1e-10


def _depth_video(seed: int):
    g = torch.Generator().manual_seed(seed)
    gt = 1 + 5 * torch.rand(3, 24, 32, generator=g)
    valid = torch.rand(3, 24, 32, generator=g) > 0.2
    return gt, valid


def test_align_depth_scale_recovers_the_scale_and_ignores_invalid_pixels():
    gt, valid = _depth_video(6)
    pred = gt / 2.5
    pred[~valid] = 1000.0
    aligned, params = align_depth(pred, gt, valid, "scale")
    assert abs(params["scale"] - 2.5) < 1e-4 and params["shift"] == 0.0
    assert torch.allclose(aligned[valid], gt[valid], rtol=1e-4)


def test_align_depth_scale_and_shift_recovers_both():
    gt, valid = _depth_video(7)
    pred = (gt - 0.05) / 1.2
    pred[~valid] = -50.0
    aligned, params = align_depth(pred, gt, valid, "scale&shift")
    assert abs(params["scale"] - 1.2) < 2e-3 and abs(params["shift"] - 0.05) < 1e-2
    assert float(((aligned - gt).abs() / gt)[valid].mean()) < 2e-3


def test_scale_and_shift_fit_takes_the_protocols_adam_steps():
    """The active-set L1 fit gives what Adam on the full autograd loss gives (MonST3R's ``lad2``, written out here),
    on noisy depth with 2 % wild outliers and predictions of every sign."""
    from sora3r.geometry.align import _l1_scale_shift_adam

    generator = torch.Generator().manual_seed(3)
    gt = 0.5 + 6.0 * torch.rand(300_000, generator=generator)
    pred = (0.4 * gt + 0.3) * (1.0 + 0.15 * torch.randn(gt.shape, generator=generator))
    outliers = torch.rand(gt.shape, generator=generator) < 0.02
    pred[outliers] = 80.0 * torch.randn(int(outliers.sum()), generator=generator)

    scale = (gt.median() / pred.median()).reshape(1).clone().requires_grad_(True)
    shift = torch.zeros(1, requires_grad=True)
    optimizer, previous = torch.optim.Adam([scale, shift], lr=1e-4), None
    for _ in range(1000):
        optimizer.zero_grad()
        loss = (scale * pred + shift - gt).abs().sum()
        loss.backward()
        optimizer.step()
        if previous is not None and abs(previous - loss.item()) < 1e-6:
            break
        previous = loss.item()
    got = _l1_scale_shift_adam(pred, gt)
    assert abs(float(scale) - 1.0 / 0.4) > 0.05  # the protocol's 1,000 small steps stop short of the optimum
    torch.testing.assert_close(torch.stack(got), torch.cat([scale, shift]).detach(), rtol=1e-5, atol=1e-6)


def test_align_depth_none_and_errors():
    gt, valid = _depth_video(8)
    aligned, params = align_depth(gt * 3, gt, valid, "none")
    assert torch.equal(aligned, gt * 3) and params == {"scale": 1.0, "shift": 0.0}
    with pytest.raises(ValueError, match="unknown mode"):
        align_depth(gt, gt, valid, "median")
    with pytest.raises(ValueError, match="no valid pixels"):
        align_depth(gt, gt, torch.zeros_like(valid), "scale")


@pytest.mark.parametrize("repair", [True, False])
def test_a_frame_refined_into_the_mirrored_solution_restarts_from_its_neighbour(monkeypatch, repair):
    """A frame whose initial camera faces away from its points (all of them behind it, as a hypothesis fitted to
    outliers can) ends up far off after refinement; recover_cameras restarts it from the nearest good frame's pose."""
    from sora3r.geometry import cameras

    points, depth, K, c2w = make_clip(18, frames=6)
    initialise = cameras._ransac_init

    def mirrored_frame_3(*args):
        focal, rotation, translation = initialise(*args)
        flip = torch.diag(torch.tensor([-1.0, 1.0, -1.0], dtype=rotation.dtype))  # turn the camera round
        rotation, translation = rotation.clone(), translation.clone()
        rotation[3], translation[3] = flip @ rotation[3], flip @ translation[3]
        return focal, rotation, translation

    monkeypatch.setattr(cameras, "_ransac_init", mirrored_frame_3)
    if not repair:
        monkeypatch.setattr(cameras, "MIN_IN_FRONT", 0.0)  # no frame counts as failed
    estimate = recover_cameras(points)
    if repair:
        assert pose_error(estimate.c2w, c2w, points) < 1e-3
        assert relative(estimate.depth, depth) < 1e-3
    else:
        assert float((estimate.depth[3] > 0).float().mean()) < 0.5  # the failure the repair exists for


def test_first_camera_world_in_place_equals_the_copy(monkeypatch):
    from sora3r.geometry import cameras as camera_module

    points = make_clip(19, frames=3)[0]
    batch = torch.stack([points, points.flip(0)])
    estimate = recover_cameras(batch)
    moved, rebased = first_camera_world(batch, estimate)
    monkeypatch.setattr(camera_module, "PREPARE_CHUNK_PIXELS", 1000)  # several chunks
    target = batch.clone()
    moved_in_place, rebased_in_place = first_camera_world(target, estimate, in_place=True)
    assert moved_in_place.data_ptr() == target.data_ptr()
    assert torch.allclose(moved_in_place, moved, atol=1e-6) and torch.equal(rebased_in_place.c2w, rebased.c2w)
