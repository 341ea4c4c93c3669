"""Camera recovery from world-frame pointmaps: shared focal, per-frame poses and depth (Sora3R post-processing).

Pixel convention: pixel ``(u, v)`` is column ``u``, row ``v`` of the ``(H, W)`` grid and its centre sits at the
integer coordinates ``(u, v)``; the default principal point is therefore ``((W - 1) / 2, (H - 1) / 2)``. Cameras are
OpenCV pinhole cameras (x right, y down, z forward) with square pixels (``fx == fy``) when the focal is estimated.

Method (per clip, all frames and clips batched, no host syncs inside the loops):
1. Each frame's fit uses a strided pixel grid of at most ``max_fit_pixels`` pixels (the depth output covers all).
2. Initialisation by hypothesise-and-verify: ``hypotheses`` DLT projection matrices per frame, each from
   ``SAMPLE_SIZE`` pixels drawn in proportion to their weights, are scored with a truncated reprojection cost
   (MSAC) on a random subset; the best one is decomposed into focal, rotation and translation. The clip's focal
   starts at the median of the per-frame focals.
3. Refinement: ``iterations`` Gauss-Newton steps on the reprojection error of all fit pixels, jointly over the
   shared focal (eliminated by a Schur complement) and every frame's pose, with iteratively re-weighted robust
   weights (Cauchy, then Tukey's biweight; the scale follows a low quantile of each frame's residuals) times the
   caller's confidences.
4. Clips longer than ``focal_frames`` (long videos): steps 1-3 on that many evenly spaced frames give the focal;
   then every frame's pose is fitted with it fixed, ``focal_frames`` frames at a time, so the fit data held stays
   the same whatever the length (with a known focal the frames' fits are independent).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch

from sora3r.geometry.projection import image_centre, intrinsics_matrix
from sora3r.geometry.transforms import invert_rigid, transform_points

SAMPLE_SIZE = 6  # correspondences per DLT hypothesis (11 unknowns; 6 points = 12 equations)
SCORE_PIXELS = 512  # pixels per frame used to score hypotheses
SCORE_THRESHOLD = 0.01  # MSAC truncation, as a fraction of (H + W) pixels; also the largest robust scale
# Robust residual scale per frame: sigma = (25 % quantile of the residual norms) / (that quantile of a Rayleigh
# distribution of unit sigma); valid while at least a quarter of the pixels are inliers. It never grows.
RESIDUAL_QUANTILE = 0.25
RAYLEIGH_QUANTILE = math.sqrt(-2 * math.log(1 - RESIDUAL_QUANTILE))
QUANTILE_PIXELS = 1024  # residuals sampled (strided) for that quantile (a sort per frame and iteration)
CAUCHY_C = 2.385  # Cauchy weights 1 / (1 + (r / (c sigma))^2) in the first half of the iterations
TUKEY_C = 4.685  # then Tukey biweights (1 - (r / (c sigma))^2)^2, zero beyond c sigma (outliers drop out)
CAUCHY_FRACTION = 0.5
FOCAL_FRAME_FRACTION = 0.5  # frames with fewer inliers than this x the clip's best leave the focal alone
MIN_RESIDUAL_SCALE = 1e-3  # pixels; floor of sigma so exact data stays well conditioned
DAMPING = 1e-6  # Levenberg-Marquardt style diagonal damping of the pose blocks
RANSAC_CHUNK_VALUES = 1 << 22  # hypotheses x score pixels of the frames scored at once (bounds the memory)
# Robust Gauss-Newton steps: on the bundled model's predictions of 48 held-out clips, 12 give the depth of 20 to the
# fourth digit and ATE within 2 % (either way); on 24 realistic clips the ATE still falls a little to 20 (0.083 ->
# 0.080) and rises below 12 (8: 0.088), a trade for time (docs/speed.md).
GAUSS_NEWTON_ITERATIONS = 12
GAUSS_NEWTON_CHUNK_PIXELS = 1 << 19  # fit pixels of the frames refined at once (bounds the memory)
PREPARE_CHUNK_PIXELS = 1 << 20  # pixels of the frames whose fit data is prepared at once (bounds the memory)
# Normalised units (points centred and scaled to unit median spread, focal of order one): a point counts as in front
# of a camera beyond MIN_DEPTH; the focal stays above MIN_FOCAL; TINY guards divisions by spreads and curvatures.
MIN_DEPTH = 1e-6
MIN_IN_FRONT = 0.5  # a frame whose camera sees fewer of its fit points in front has failed (_repair_failed_frames)
MIN_FOCAL = 1e-6
TINY = 1e-12
FOCAL_FRAMES = 256  # frames of a clip that fit its focal jointly; longer clips go through _recover_long


@dataclass
class CameraEstimate:
    """Cameras recovered for one clip ``(T, ...)`` or a batch of clips ``(B, T, ...)``.

    Attributes:
        K: ``(..., 3, 3)`` intrinsics in pixels (one per clip).
        c2w: ``(..., T, 4, 4)`` camera-to-world poses in the pointmaps' world frame (OpenCV axes).
        depth: ``(..., T, H, W)`` z of each pixel's point in its own recovered camera.
        focal: ``(...)`` focal length in pixels (``K[..., 0, 0]``).
    """

    K: torch.Tensor
    c2w: torch.Tensor
    depth: torch.Tensor
    focal: torch.Tensor


@dataclass
class _Frames:
    """Fit data of ``F = B * T`` frames in normalised units (see ``_prepare``)."""

    points: torch.Tensor  # (F, n, 3) world points, centred and scaled per frame
    pixels: torch.Tensor  # (F, n, 2) pixel coordinates minus principal point, divided by the pixel scale
    weights: torch.Tensor  # (F, n) >= 0
    centre: torch.Tensor  # (F, 3) world centre of each frame's points
    spread: torch.Tensor  # (F,) world scale of each frame's points

    def __getitem__(self, frames: slice) -> "_Frames":
        return _Frames(self.points[frames], self.pixels[frames], self.weights[frames], self.centre[frames],
                       self.spread[frames])


def _fit_grid(height: int, width: int, max_fit_pixels: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices ``(n,)`` and pixel coordinates ``(n, 2)`` (u, v) of a strided grid of at most that many pixels."""
    stride = max(1, math.ceil(math.sqrt(height * width / max_fit_pixels)))
    rows = torch.arange(stride // 2, height, stride, device=device)
    cols = torch.arange(stride // 2, width, stride, device=device)
    v, u = torch.meshgrid(rows, cols, indexing="ij")
    return (v * width + u).reshape(-1), torch.stack([u, v], -1).reshape(-1, 2)


def _prepare(points: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Centre and scale each frame's points ``(F, n, 3)`` (robustly: median centre, median distance).

    Returns normalised points ``(F, n, 3)``, weights ``(F, n)`` (0 for non-finite points), centres ``(F, 3)`` and
    spreads ``(F,)``.
    """
    finite = torch.isfinite(points).all(-1)
    weights = torch.where(finite, weights, 0.0)
    points = torch.where(finite[..., None], points, 0.0)
    used = (weights > 0)[..., None]
    centre = torch.where(used, points, torch.nan).nanmedian(dim=1).values
    points = points - centre[:, None]
    distance = torch.linalg.vector_norm(points, dim=-1)
    spread = torch.where(used[..., 0], distance, torch.nan).nanmedian(dim=1).values.clamp(min=TINY)
    return points / spread[:, None, None], weights, centre, spread


def _fit_frames(points: torch.Tensor, weights: torch.Tensor | None, index: torch.Tensor, pixels: torch.Tensor,
                caller: str) -> _Frames:
    """The fit data of every frame of ``points (B, T, H, W, 3)`` at the fit pixels ``index (n,)``, whose normalised
    coordinates per clip are ``pixels (B, n, 2)``; ``weights (B, T, H, W)`` or ``None`` (all ones).

    Frames are prepared a chunk at a time, so what stays per frame is only its fit pixels' normalised points and
    weights (16 bytes a fit pixel in float32; the pixel coordinates of a single clip are a broadcast view).
    Raises ValueError (one host sync) if a frame has fewer than ``SAMPLE_SIZE`` usable pixels.
    """
    num_clips, num_frames, height, width, _ = points.shape
    total, count = num_clips * num_frames, index.numel()
    flat_points = points.reshape(total, height * width, 3)
    flat_weights = None if weights is None else weights.reshape(total, height * width)
    frames = _Frames(points=points.new_empty(total, count, 3), weights=points.new_empty(total, count),
                     centre=points.new_empty(total, 3), spread=points.new_empty(total),
                     pixels=pixels.expand(total, count, 2) if num_clips == 1 else pixels.repeat_interleave(num_frames, 0))
    chunk = max(1, PREPARE_CHUNK_PIXELS // (height * width))
    for first in range(0, total, chunk):
        part = slice(first, first + chunk)
        fit_points = flat_points[part].index_select(1, index)
        fit_weights = (torch.ones_like(fit_points[..., 0]) if flat_weights is None
                       else flat_weights[part].index_select(1, index).to(points.dtype).clamp(min=0))
        (frames.points[part], frames.weights[part], frames.centre[part],
         frames.spread[part]) = _prepare(fit_points, fit_weights)
    if bool(((frames.weights > 0).sum(1) < SAMPLE_SIZE).any()):
        raise ValueError(f"{caller}: a frame has fewer than {SAMPLE_SIZE} usable pixels (finite, weight > 0)")
    return frames


def _dlt(points: torch.Tensor, pixels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted DLT: projection matrices ``(..., 3, 4)`` from points ``(..., m, 3)``, pixels ``(..., m, 2)``.

    Each correspondence gives ``P1.X - u P3.X = 0`` and ``P2.X - v P3.X = 0``; the solution is the eigenvector of
    the smallest eigenvalue of ``A^T W A`` (solved in float64).
    """
    homogeneous = torch.cat([points, torch.ones_like(points[..., :1])], -1)
    zeros = torch.zeros_like(homogeneous)
    u, v = pixels[..., 0:1], pixels[..., 1:2]
    row_u = torch.cat([homogeneous, zeros, -u * homogeneous], -1)
    row_v = torch.cat([zeros, homogeneous, -v * homogeneous], -1)
    rows = torch.cat([row_u, row_v], -2).double()  # (..., 2m, 12)
    w = torch.cat([weights, weights], -1).double()[..., None]
    normal = (rows * w).transpose(-1, -2) @ rows
    _, vectors = torch.linalg.eigh(normal)
    return vectors[..., 0].reshape(*points.shape[:-2], 3, 4).to(points.dtype)


def _decompose(projection: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``P ~ diag(f, f, 1) [R | t]`` (centred pixels) -> focal ``(...)``, rotation ``(..., 3, 3)``, translation ``(..., 3)``.

    The sign of ``P`` is fixed by ``det R = +1``; ``R`` is the nearest rotation to the scaled left block.
    Degenerate inputs return a NaN focal.
    """
    block, last = projection[..., :3], projection[..., 3]
    norms = torch.linalg.vector_norm(block, dim=-1)  # (..., 3)
    focal = (norms[..., 0] + norms[..., 1]) / (2 * norms[..., 2])
    scale = torch.sign(torch.linalg.det(block)) * norms[..., 2]
    divisor = torch.stack([focal * scale, focal * scale, scale], -1)  # (..., 3)
    scaled = block / divisor[..., None]
    # Degenerate samples give non-finite blocks: decompose the identity instead and flag them with a NaN focal.
    finite = torch.isfinite(scaled).all(-1).all(-1) & torch.isfinite(focal)
    scaled = torch.where(finite[..., None, None], scaled, torch.eye(3, dtype=block.dtype, device=block.device))
    focal = torch.where(finite, focal, torch.nan)
    u, _, vh = torch.linalg.svd(scaled)
    fix = torch.ones_like(divisor)
    fix[..., 2] = torch.sign(torch.linalg.det(u @ vh))
    rotation = (u * fix[..., None, :]) @ vh
    return focal, rotation, last / divisor


def _project(points, rotation, translation):
    """Camera points ``(F, n, 3)`` and normalised projections ``x/z, y/z`` for world points ``(F, n, 3)``."""
    camera = points @ rotation.transpose(-1, -2) + translation[:, None]
    depth = camera[..., 2]
    safe = torch.where(depth > MIN_DEPTH, depth, 1.0)
    return camera, camera[..., 0] / safe, camera[..., 1] / safe


def _ransac_init(frames: _Frames, hypotheses: int, threshold: float, generator: torch.Generator):
    """Best-scoring DLT hypothesis per frame -> focal ``(F,)``, rotation ``(F, 3, 3)``, translation ``(F, 3)``.

    Frames are scored a chunk at a time, so memory does not grow with the number of frames."""
    num_frames = frames.points.shape[0]
    chunk = max(1, RANSAC_CHUNK_VALUES // (hypotheses * SCORE_PIXELS))
    # The results go into tensors made before the loop: small tensors kept between one chunk's large temporaries and
    # the next would pin the allocator's heap, which then grows with the number of frames (glibc malloc).
    focal = frames.points.new_empty(num_frames)
    rotation = frames.points.new_empty(num_frames, 3, 3)
    translation = frames.points.new_empty(num_frames, 3)
    for first in range(0, num_frames, chunk):
        part = slice(first, first + chunk)
        focal[part], rotation[part], translation[part] = _ransac_chunk(frames[part], hypotheses, threshold, generator)
    return focal, rotation, translation


def _ransac_chunk(frames: _Frames, hypotheses: int, threshold: float, generator: torch.Generator):
    """`_ransac_init` on one chunk of frames."""
    num_frames = frames.points.shape[0]
    sample = torch.multinomial(frames.weights, hypotheses * SAMPLE_SIZE, replacement=True, generator=generator)
    sample = sample.reshape(num_frames, hypotheses, SAMPLE_SIZE)
    sample_points = torch.gather(frames.points, 1, sample.reshape(num_frames, -1, 1).expand(-1, -1, 3))
    sample_points = sample_points.reshape(num_frames, hypotheses, SAMPLE_SIZE, 3)
    sample_pixels = torch.gather(frames.pixels, 1, sample.reshape(num_frames, -1, 1).expand(-1, -1, 2))
    sample_pixels = sample_pixels.reshape(num_frames, hypotheses, SAMPLE_SIZE, 2)
    projection = _dlt(sample_points, sample_pixels, torch.ones_like(sample, dtype=frames.points.dtype))
    focal, rotation, translation = _decompose(projection)  # (F, S), (F, S, 3, 3), (F, S, 3)

    score_index = torch.multinomial(frames.weights, SCORE_PIXELS, replacement=True, generator=generator)
    score_points = torch.gather(frames.points, 1, score_index[..., None].expand(-1, -1, 3))  # (F, m, 3)
    camera = score_points[:, None] @ rotation.transpose(-1, -2) + translation[..., None, :]  # (F, S, m, 3)
    depth = camera[..., 2]
    safe = torch.where(depth > MIN_DEPTH, depth, 1.0)
    predicted = focal[..., None, None] * camera[..., :2] / safe[..., None]
    score_pixels = torch.gather(frames.pixels, 1, score_index[..., None].expand(-1, -1, 2))
    error = (predicted - score_pixels[:, None]).square().sum(-1)
    error = torch.where(depth > MIN_DEPTH, error, torch.inf).clamp(max=threshold**2)
    cost = torch.nan_to_num(error.sum(-1), nan=torch.inf)  # degenerate samples give NaN
    best = cost.argmin(1)
    pick = torch.arange(num_frames, device=best.device)
    return focal[pick, best], rotation[pick, best], translation[pick, best]


def _skew_exp(omega: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``exp([omega]_x)`` ``(..., 3, 3)`` for axis-angle vectors ``(..., 3)``, by Rodrigues' formula
    ``I + a [w]_x + b [w]_x^2`` with ``a = sin(theta) / theta = sinc(theta / pi)`` and ``b = (1 - cos(theta)) /
    theta^2 = sinc(theta / 2 pi)^2 / 2`` (torch's normalised sinc: exact at 0, no cancellation near it). Elementwise,
    with none of ``matrix_exp``'s host syncs, and few ops: on the GPU each op is a kernel launch, which for these
    ``(F, 3)`` tensors costs more than its arithmetic. ``[w]_x`` is built by column as ``w x e_j``."""
    eye = torch.eye(3, dtype=omega.dtype, device=omega.device).expand(*omega.shape[:-1], 3, 3)
    skew = torch.linalg.cross(omega[..., :, None].expand_as(eye), eye, dim=-2)
    theta = torch.linalg.vector_norm(omega, dim=-1)[..., None, None]
    a = torch.sinc(theta / math.pi)
    b = torch.sinc(theta / (2 * math.pi)).square() / 2
    return eye + a * skew + b * (skew @ skew)


def _robust_weights(error: torch.Tensor, considered: torch.Tensor, scale: torch.Tensor, cauchy: bool,
                    min_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """IRLS weights ``(F, n)`` of the reprojection errors ``(F, n)`` and the updated residual scale ``(F,)``.

    The scale follows a low quantile of the ``considered`` pixels' residuals of each frame (sampled on a strided
    subset), never grows, and stays at least ``min_scale``; the weights are Cauchy weights (``cauchy``) or Tukey
    biweights of ``error / scale``.
    """
    quantile_stride = max(1, error.shape[1] // QUANTILE_PIXELS)  # the residual scale needs only a sample
    # The order statistic at that quantile of the considered residuals (others sort last as inf); no considered
    # pixel: inf, which leaves the scale as it was. A sort and a gather: fewer ops than nanquantile's interpolation.
    ordered = torch.where(considered, error, torch.inf)[:, ::quantile_stride].sort(dim=1).values
    count = considered[:, ::quantile_stride].sum(1, keepdim=True)
    rank = (count * RESIDUAL_QUANTILE).long().clamp(max=ordered.shape[1] - 1)
    sigma = ordered.gather(1, rank)[:, 0] / RAYLEIGH_QUANTILE
    scale = torch.minimum(scale, sigma).clamp(min=min_scale)
    ratio = error / scale[:, None]
    if cauchy:
        robust = 1 / (1 + (ratio / CAUCHY_C).square())
    else:
        robust = (1 - (ratio / TUKEY_C).square()).clamp(min=0).square()
    return robust, scale


def _normal_equations(f: torch.Tensor, camera: torch.Tensor, pu: torch.Tensor, pv: torch.Tensor,
                      in_front: torch.Tensor, residual_u: torch.Tensor, residual_v: torch.Tensor,
                      weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted Gauss-Newton system ``(J^T W J (F, 7, 7), J^T W r (F, 7))`` of the reprojection residuals
    ``(F, n)`` in u and v over each frame's rotation (left-multiplied axis-angle), translation and the focal.

    Each pixel's u and v rows ``[J | r]`` (8 entries) go through one product ``[J | r]^T W [J | r]`` per row kind:
    its top-left block is ``J^T W J`` and its last column ``J^T W r`` (few ops: on the GPU these are launch-bound)."""
    inv_z = f / torch.where(in_front, camera[..., 2], 1.0)
    f_pu, f_pv = f * pu, f * pv
    f_pu_pv = f_pu * pv
    zero = torch.zeros_like(pu)
    rows_u = torch.stack([-f_pu_pv, f + f_pu * pu, -f_pv, inv_z, zero, -inv_z * pu, pu, residual_u], -1)
    rows_v = torch.stack([-(f + f_pv * pv), f_pu_pv, f_pu, zero, inv_z, -inv_z * pv, pv, residual_v], -1)
    weight = weight[..., None]
    system = (rows_u * weight).transpose(1, 2) @ rows_u + (rows_v * weight).transpose(1, 2) @ rows_v  # (F, 8, 8)
    return system[:, :7, :7], system[:, :7, 7]


def _frame_equations(frames: _Frames, f: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor,
                     scale: torch.Tensor, cauchy: bool, min_scale: float, max_scale: float):
    """Robustly weighted Gauss-Newton normal equations of frames' reprojection errors.

    Args: fit data of ``F`` frames, their focal ``(F, 1)``, poses, and robust residual scale ``(F,)``.
    Returns: ``hessian (F, 7, 7)`` and ``gradient (F, 7)`` over (rotation, translation, focal), the updated
    scale ``(F,)`` and each frame's inlier fraction ``(F,)``.
    """
    camera, pu, pv = _project(frames.points, rotation, translation)
    in_front = camera[..., 2] > MIN_DEPTH
    res_u, res_v = f * pu - frames.pixels[..., 0], f * pv - frames.pixels[..., 1]
    error = torch.hypot(res_u, res_v)
    considered = in_front & (frames.weights > 0)
    robust, scale = _robust_weights(error, considered, scale, cauchy, min_scale)
    weight = frames.weights * in_front * robust
    hessian, gradient = _normal_equations(f, camera, pu, pv, in_front, res_u, res_v, weight)
    inlier_fraction = ((error < max_scale) & considered).sum(1) / considered.sum(1).clamp(min=1)
    return hessian, gradient, scale, inlier_fraction


def _solve_steps(hessian: torch.Tensor, gradient: torch.Tensor, steers_focal: torch.Tensor | None,
                 num_clips: int) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Damped Gauss-Newton steps: ``(focal step (B,) or None, pose steps (F, 6))``.

    The pose blocks get ``DAMPING * (diag + 1)`` on their diagonal. With ``steers_focal`` (per-frame 0/1) the clip's
    shared focal is solved by a Schur complement that eliminates every frame's pose; otherwise (known K) only the
    poses move.
    """
    eye = torch.eye(6, dtype=hessian.dtype, device=hessian.device)
    h_pp = hessian[:, :6, :6] * (1 + DAMPING * eye) + DAMPING * eye
    if steers_focal is None:
        return None, -torch.linalg.solve_ex(h_pp, gradient[:, :6]).result
    # Schur complement: eliminate every frame's pose, solve the clip's focal, back-substitute. Columns: (focal, r).
    solved = torch.linalg.solve_ex(h_pp, torch.stack([hessian[:, :6, 6], gradient[:, :6]], -1)).result  # (F, 6, 2)
    tail = torch.stack([hessian[:, 6, 6], gradient[:, 6]], -1)  # (F, 2)
    reduced = steers_focal[:, None] * (tail - (hessian[:, 6, :6, None] * solved).sum(1))  # (F, 2): h, g
    reduced = reduced.reshape(num_clips, -1, 2).sum(1)  # (B, 2)
    step_focal = -reduced[:, 1] / reduced[:, 0].clamp(min=TINY)
    frame_focal_step = step_focal.repeat_interleave(hessian.shape[0] // num_clips)[:, None]
    return step_focal, -torch.addcmul(solved[..., 1], solved[..., 0], frame_focal_step)


def _gauss_newton(
    frames: _Frames,
    focal: torch.Tensor,
    rotation: torch.Tensor,
    translation: torch.Tensor,
    num_clips: int,
    estimate_focal: bool,
    iterations: int,
    min_scale: float,
    max_scale: float,
    compile_mode: str | None = None,
):
    """Robust joint refinement; ``focal`` is ``(B,)`` (shared per clip), poses ``(F, ...)`` with ``F = B * T``.

    The per-pixel work runs a chunk of frames at a time (memory does not grow with the number of frames); only the
    small per-frame normal equations are kept for the joint focal step. ``compile_mode``: see `recover_cameras`."""
    num_frames, num_pixels = frames.weights.shape
    frames_per_clip = num_frames // num_clips
    chunk = max(1, GAUSS_NEWTON_CHUNK_PIXELS // num_pixels)
    scale = torch.full((num_frames,), max_scale, dtype=focal.dtype, device=focal.device)
    # Per-frame results of the chunks, made once: small tensors made between one chunk's large temporaries and the next
    # would pin the allocator's heap, which then grows with the number of frames (glibc malloc).
    equations = (focal.new_empty(num_frames, 7, 7), focal.new_empty(num_frames, 7), scale,
                 focal.new_empty(num_frames)) if num_frames > chunk else None
    frame_equations, update = _iteration_functions(compile_mode)
    for step in range(iterations):
        if compile_mode is not None:
            torch.compiler.cudagraph_mark_step_begin()  # the previous iteration's graph outputs may be overwritten
        f = focal.repeat_interleave(frames_per_clip)[:, None]  # (F, 1)
        cauchy = step < iterations * CAUCHY_FRACTION
        if equations is None:  # one chunk: no copies
            hessian, gradient, scale, inlier_fraction = frame_equations(frames, f, rotation, translation, scale,
                                                                        cauchy, min_scale, max_scale)
        else:
            for first in range(0, num_frames, chunk):
                part = slice(first, first + chunk)
                results = frame_equations(frames[part], f[part], rotation[part], translation[part], scale[part],
                                          cauchy, min_scale, max_scale)
                for out, value in zip(equations, results):
                    out[part] = value
            hessian, gradient, scale, inlier_fraction = equations
        focal, rotation, translation = update(hessian, gradient, inlier_fraction, focal, rotation, translation,
                                              num_clips, estimate_focal)
        if compile_mode is not None:  # what the next iteration reads, out of the graphs' memory (CUDA graphs reuse it)
            focal, rotation, translation, scale = (value.clone() for value in (focal, rotation, translation, scale))
    return focal, rotation, translation


def _update(hessian: torch.Tensor, gradient: torch.Tensor, inlier_fraction: torch.Tensor, focal: torch.Tensor,
            rotation: torch.Tensor, translation: torch.Tensor, num_clips: int,
            estimate_focal: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Gauss-Newton update of the clips' focal ``(B,)`` and the frames' poses from their normal equations."""
    steers_focal = None
    if estimate_focal:
        # Frames that fit far worse than the clip's best (a failed initialisation) do not steer the shared focal.
        fraction = inlier_fraction.reshape(num_clips, -1)
        steers_focal = (fraction >= FOCAL_FRAME_FRACTION * fraction.amax(1, keepdim=True)).reshape(-1)
        steers_focal = steers_focal.to(hessian.dtype)
    step_focal, step_pose = _solve_steps(hessian, gradient, steers_focal, num_clips)
    if step_focal is not None:
        focal = (focal + step_focal).clamp(min=MIN_FOCAL)
    rotation_step = _skew_exp(step_pose[:, :3])
    return (focal, rotation_step @ rotation,
            (rotation_step @ translation[..., None])[..., 0] + step_pose[:, 3:])


@functools.cache
def _iteration_functions(compile_mode: str | None):
    """``(_frame_equations, _update)``, eager or through ``torch.compile(mode=compile_mode)`` (made once per mode;
    each compiled function compiles on its first call of every new shape and flag: fused kernels, on a GPU far fewer
    launches than the ~115 small ops an eager iteration issues)."""
    if compile_mode is None:
        return _frame_equations, _update
    return tuple(torch.compile(function, mode=compile_mode, dynamic=False, fullgraph=True)
                 for function in (_frame_equations, _update))


@dataclass
class _Problem:
    """A batch of clips ready for fitting: validated inputs and the normalised fit data."""

    points: torch.Tensor  # (B, T, H, W, 3) all pixels, working dtype
    frames: _Frames  # fit pixels of the B * T frames
    known_K: torch.Tensor | None  # (B, 3, 3)
    principal_point: torch.Tensor  # (B, 2) pixels
    pixel_scale: torch.Tensor  # (B, 2) pixels per normalised unit (fx, fy when K is known)
    threshold: float  # MSAC truncation in normalised units
    min_scale: float  # floor of the robust residual scale in normalised units
    unbatched: bool


def _validate(points, weights, K, principal_point, caller: str) -> None:
    """Raise ValueError for points not (T,H,W,3) / (B,T,H,W,3), weights of another shape, or both K and
    principal_point."""
    if points.ndim not in (4, 5) or points.shape[-1] != 3:
        raise ValueError(f"{caller}: points must be (T,H,W,3) or (B,T,H,W,3), got {tuple(points.shape)}")
    if K is not None and principal_point is not None:
        raise ValueError(f"{caller}: give either K or principal_point, not both")
    if weights is not None and weights.shape != points.shape[:-1]:
        raise ValueError(f"{caller}: weights {tuple(weights.shape)} do not match points {tuple(points.shape)}")


def _working_dtype(points: torch.Tensor) -> torch.dtype:
    """The dtype the fit runs in: the points' own when float32 / float64, else float32."""
    return points.dtype if points.dtype in (torch.float32, torch.float64) else torch.float32


def _first_clip(estimate: CameraEstimate) -> CameraEstimate:
    """The single clip of a batch-of-one estimate (the unbatched caller's shapes)."""
    return CameraEstimate(estimate.K[0], estimate.c2w[0], estimate.depth[0], estimate.focal[0])


def _setup(points, weights, K, principal_point, max_fit_pixels, caller: str) -> _Problem:
    """Pick the fit grid and normalise pixels and points (see :class:`_Frames`) of inputs `_validate` passed."""
    unbatched = points.ndim == 4
    if unbatched:
        points = points[None]
        weights = None if weights is None else weights[None]
    num_clips, num_frames, height, width, _ = points.shape
    dtype = _working_dtype(points)
    device = points.device
    points = points.to(dtype)
    index, grid = _fit_grid(height, width, max_fit_pixels, device)

    if K is not None:
        # Known intrinsics: normalised camera coordinates, focal fixed at 1 (the mean fx read where K was given).
        mean_scale = float(K.reshape(-1, 3, 3)[:, 0, 0].double().mean())
        K = K.to(device=device, dtype=dtype).expand(num_clips, 3, 3)
        centre = K[:, :2, 2]
        pixel_scale = torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)
    else:
        # Normalise pixels by a fixed size so the focal (in these units) is of order one.
        if principal_point is None:
            principal_point = image_centre(height, width)
        centre = torch.as_tensor(principal_point, dtype=dtype, device=device)
        if centre.shape != (2,):
            raise ValueError(f"{caller}: principal_point must be (cx, cy), got shape {tuple(centre.shape)}")
        centre = centre.expand(num_clips, 2)
        mean_scale = (height + width) / 2
        pixel_scale = torch.full((num_clips, 2), mean_scale, dtype=dtype, device=device)
    centred = (grid.to(dtype) - centre[:, None]) / pixel_scale[:, None]  # (B, n, 2)
    return _Problem(
        points=points,
        frames=_fit_frames(points, weights, index, centred, caller),
        known_K=K,
        principal_point=centre,
        pixel_scale=pixel_scale,
        threshold=SCORE_THRESHOLD * (height + width) / mean_scale,
        min_scale=MIN_RESIDUAL_SCALE / mean_scale,
        unbatched=unbatched,
    )


def _finish(problem: _Problem, focal: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor) -> CameraEstimate:
    """Normalised focal ``(B,)`` and world-to-camera poses ``(F, ...)`` -> :class:`CameraEstimate` in world units."""
    frames, points = problem.frames, problem.points
    num_clips, num_frames, height, width, _ = points.shape
    # x_cam = spread * (R X' + t') with X' = (X - centre) / spread.
    translation = frames.spread[:, None] * translation - (rotation @ frames.centre[..., None])[..., 0]
    w2c = torch.eye(4, dtype=points.dtype, device=points.device).repeat(num_clips * num_frames, 1, 1)
    w2c[:, :3, :3] = rotation
    w2c[:, :3, 3] = translation
    depth = (points.reshape(num_clips * num_frames, -1, 3) @ rotation[:, 2, :, None])[..., 0] + translation[:, 2:3]
    K = problem.known_K
    if K is None:
        focal_px = focal * problem.pixel_scale[:, 0]
        K = intrinsics_matrix(focal_px, focal_px, problem.principal_point[:, 0], problem.principal_point[:, 1])
    estimate = CameraEstimate(
        K=K,
        c2w=invert_rigid(w2c).reshape(num_clips, num_frames, 4, 4),
        depth=depth.reshape(num_clips, num_frames, height, width),
        focal=K[:, 0, 0],
    )
    if problem.unbatched:
        estimate = _first_clip(estimate)
    return estimate


def _clip_focal(problem: _Problem, per_frame_focal: torch.Tensor) -> torch.Tensor:
    """One focal per clip ``(B,)``: the median of the frames' focals, or 1 when K is known."""
    num_clips = problem.points.shape[0]
    if problem.known_K is not None:
        return torch.ones(num_clips, dtype=per_frame_focal.dtype, device=per_frame_focal.device)
    return per_frame_focal.reshape(num_clips, -1).median(1).values


def recover_cameras(
    points: torch.Tensor,
    weights: torch.Tensor | None = None,
    K: torch.Tensor | None = None,
    principal_point: torch.Tensor | Sequence[float] | None = None,
    iterations: int = GAUSS_NEWTON_ITERATIONS,
    hypotheses: int = 256,
    max_fit_pixels: int = 16384,
    seed: int = 0,
    focal_frames: int = FOCAL_FRAMES,
    compile_mode: str | None = None,
) -> CameraEstimate:
    """Recover intrinsics, poses and depth from world-frame pointmaps, robust to outlier pixels.

    Args:
        points: ``(T, H, W, 3)`` or ``(B, T, H, W, 3)`` world-frame pointmaps (non-finite points are ignored).
        weights: per-pixel confidences ``>= 0`` of shape ``points.shape[:-1]``; they multiply the robust weights
            and set how often a pixel is drawn for a hypothesis. ``None`` = all ones.
        K: known intrinsics ``(3, 3)`` (or ``(B, 3, 3)``); the focal is then not estimated.
        principal_point: ``(cx, cy)`` in pixels when ``K`` is unknown; default the image centre
            ``((W - 1) / 2, (H - 1) / 2)`` (pixel centres at integer coordinates).
        iterations: robust Gauss-Newton steps after the hypothesise-and-verify initialisation.
        hypotheses: DLT hypotheses drawn per frame.
        max_fit_pixels: pixels per frame (a strided grid) used for the fit.
        seed: seed of the hypothesis sampling (results are deterministic for a given seed and device).
        focal_frames: clips with more frames fit their focal on this many evenly spaced frames, then the poses
            with it fixed, this many frames at a time (memory of the fit independent of the length; step 4 of the
            module docstring).
        compile_mode: ``None`` (eager), or a ``torch.compile`` mode (`sora3r.models.fast.COMPILE_MODES`) for the
            Gauss-Newton iterations' per-pixel equations and pose updates: the same arithmetic in fused kernels
            (on a GPU, where eager camera recovery is bound by launching ~115 small ops an iteration). The first
            call of every new pointmap shape compiles (seconds; PyTorch caches the kernels on disk); a frame-count
            or known-K change compiles again. ``benchmarks/bench_camera_recovery.py --compile MODE`` measures it.
    Returns:
        :class:`CameraEstimate` with the leading shape of ``points``: ``K`` in pixels of the ``(H, W)`` grid, ``c2w``
        in the points' world frame and units, ``depth`` (z in each camera) in the points' units.
    Raises:
        ValueError: points not ``(T, H, W, 3)`` / ``(B, T, H, W, 3)``, weights of another shape, both ``K`` and
            ``principal_point``, a frame with fewer than ``SAMPLE_SIZE`` usable pixels, ``focal_frames < 1``, or
            an unknown ``compile_mode``.
    """
    if focal_frames < 1:
        raise ValueError(f"recover_cameras: focal_frames must be >= 1, got {focal_frames}")
    if compile_mode is not None:
        from sora3r.models.fast import COMPILE_MODES  # lazily: the models package imports diffusers

        if compile_mode not in COMPILE_MODES:
            raise ValueError(f"recover_cameras: compile_mode must be one of {COMPILE_MODES} or None, "
                             f"got {compile_mode!r}")
    _validate(points, weights, K, principal_point, "recover_cameras")
    if points.shape[-4] > focal_frames:
        unbatched = points.ndim == 4
        batch = (points[None], None if weights is None else weights[None]) if unbatched else (points, weights)
        estimate = _recover_long(lambda frames: (batch[0][:, frames], None if weights is None else batch[1][:, frames]),
                                 batch[0].shape[0], batch[0].shape[1], K, focal_frames, principal_point=principal_point,
                                 iterations=iterations, hypotheses=hypotheses, max_fit_pixels=max_fit_pixels, seed=seed,
                                 compile_mode=compile_mode)
        return _first_clip(estimate) if unbatched else estimate
    problem = _setup(points, weights, K, principal_point, max_fit_pixels, "recover_cameras")
    generator = torch.Generator(device=problem.points.device)
    generator.manual_seed(seed)
    focal, rotation, translation = _ransac_init(problem.frames, hypotheses, problem.threshold, generator)
    focal, rotation, translation = _gauss_newton(
        problem.frames,
        _clip_focal(problem, focal),
        rotation,
        translation,
        num_clips=problem.points.shape[0],
        estimate_focal=problem.known_K is None,
        iterations=iterations,
        min_scale=problem.min_scale,
        max_scale=problem.threshold,
        compile_mode=compile_mode,
    )
    rotation, translation = _repair_failed_frames(problem, focal, rotation, translation, iterations)
    return _finish(problem, focal, rotation, translation)


def recover_cameras_streamed(
    read: Callable[[slice | torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]],
    num_frames: int,
    K: torch.Tensor | None = None,
    focal_frames: int = FOCAL_FRAMES,
    **fit,
) -> CameraEstimate:
    """`recover_cameras` of one clip whose pointmaps are read a chunk of frames at a time, for videos too long to hold
    (`sora3r.offload.FrameStore`): at most ``focal_frames`` frames are read at once.

    Args:
        read: ``read(frames)`` -> ``(points (F, H, W, 3), weights (F, H, W) or None)`` of ``frames``, a slice or an
            index tensor of the clip's frames (each call may return a fresh copy).
        num_frames: frames of the clip.
        K, focal_frames, fit: as `recover_cameras` (its other keyword arguments).
    Returns:
        :class:`CameraEstimate` of the unbatched clip, exactly what `recover_cameras` gives for all the points.
    Raises:
        ValueError: as `recover_cameras`.
    """
    if num_frames <= focal_frames:
        return recover_cameras(*read(slice(0, num_frames)), K=K, focal_frames=focal_frames, **fit)

    def read_batch(frames):
        points, weights = read(frames)
        return points[None], None if weights is None else weights[None]

    return _first_clip(_recover_long(read_batch, 1, num_frames, K, focal_frames, **fit))


def _recover_long(read: Callable, num_clips: int, num_frames: int, K: torch.Tensor | None, focal_frames: int,
                  **fit) -> CameraEstimate:
    """`recover_cameras` of ``num_clips`` clips longer than ``focal_frames``, their frames got from ``read(frames)``
    (``(B, F, H, W, 3)`` points and ``(B, F, H, W)`` weights or ``None``): the focal from that many evenly spaced
    frames (unless ``K`` is known), then the poses with it fixed, ``focal_frames`` frames at a time, into outputs made
    first.

    What one chunk returns is copied out and dropped before the next starts: a chunk's results kept across the next
    chunk's large temporaries would pin glibc's heap, which would then grow with every chunk."""
    first_frame = read(slice(0, 1))[0]
    _validate(first_frame, None, K, fit.get("principal_point"), "recover_cameras")
    dtype, device, frame_shape = _working_dtype(first_frame), first_frame.device, first_frame.shape[2:-1]
    del first_frame
    c2w = torch.empty(num_clips, num_frames, 4, 4, dtype=dtype, device=device)
    depth = torch.empty(num_clips, num_frames, *frame_shape, dtype=dtype, device=device)
    if K is None:
        pick = torch.linspace(0, num_frames - 1, focal_frames, device=device).round().long()
        K = recover_cameras(*read(pick), **fit, focal_frames=focal_frames).K
        fit["principal_point"] = None
    for first in range(0, num_frames, focal_frames):
        part = slice(first, first + focal_frames)
        chunk = recover_cameras(*read(part), K=K, **fit, focal_frames=focal_frames)
        c2w[:, part], depth[:, part], K = chunk.c2w, chunk.depth, chunk.K
        del chunk
    return CameraEstimate(K=K, c2w=c2w, depth=depth, focal=K[..., 0, 0])


def _in_front(frames: _Frames, rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """Weighted fraction ``(F,)`` of each frame's fit points in front of its camera."""
    depth = (frames.points @ rotation[:, 2, :, None])[..., 0] + translation[:, 2:3]
    return (frames.weights * (depth > MIN_DEPTH)).sum(1) / frames.weights.sum(1).clamp(min=TINY)


def _repair_failed_frames(problem: _Problem, focal: torch.Tensor, rotation: torch.Tensor, translation: torch.Tensor,
                          iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames whose refined camera has most of its points behind it (a hypothesis that fit outliers, then a
    Gauss-Newton run into the mirrored solution) start again from the pose of the nearest good frame of their clip
    (video cameras move little between frames) and are refined with the clip's focal fixed; the new pose is kept
    where more of the frame's points end up in front. One host sync, after the refinement."""
    frames = problem.frames
    front = _in_front(frames, rotation, translation)
    failed = front < MIN_IN_FRONT
    num_clips, frames_per_clip = problem.points.shape[:2]
    good = ~failed.reshape(num_clips, frames_per_clip)
    if not bool(failed.any()) or not bool(good.any(1).all()):
        return rotation, translation
    index = torch.arange(frames_per_clip, device=focal.device)
    distance = (index[:, None] - index[None, :]).abs() + torch.where(good[:, None, :], 0, 2 * frames_per_clip)
    nearest = distance.argmin(-1) + (torch.arange(num_clips, device=focal.device) * frames_per_clip)[:, None]
    redo = failed.nonzero()[:, 0]
    source = nearest.reshape(-1)[redo]
    # world-to-camera translation in world units is spread * t - R centre (see _finish); re-expressed for `redo`
    world = frames.spread[source, None] * translation[source] - (rotation[source] @ frames.centre[source, :, None])[..., 0]
    start = (world + (rotation[source] @ frames.centre[redo, :, None])[..., 0]) / frames.spread[redo, None]
    subset = _Frames(frames.points[redo], frames.pixels[redo], frames.weights[redo], frames.centre[redo],
                     frames.spread[redo])
    _, new_rotation, new_translation = _gauss_newton(
        subset, focal.repeat_interleave(frames_per_clip)[redo], rotation[source], start, num_clips=len(redo),
        estimate_focal=False, iterations=iterations, min_scale=problem.min_scale, max_scale=problem.threshold)
    better = _in_front(subset, new_rotation, new_translation) > front[redo]
    rotation, translation = rotation.clone(), translation.clone()
    rotation[redo] = torch.where(better[:, None, None], new_rotation, rotation[redo])
    translation[redo] = torch.where(better[:, None], new_translation, translation[redo])
    return rotation, translation


def first_camera_world(points: torch.Tensor, cameras: CameraEstimate,
                       in_place: bool = False) -> tuple[torch.Tensor, CameraEstimate]:
    """Re-express pointmaps and the cameras recovered from them in the frame of the first recovered camera.

    A model predicts points in its own idea of the first camera's frame; the camera fit of those same points puts
    the first camera slightly elsewhere (1-2 degrees, a few percent of the scene size for the bundled model).
    Moving points and cameras by one rigid transform makes the package's "world = camera of the first frame" hold
    exactly and changes no depth, intrinsics, relative pose or reprojection.

    Args:
        points: ``(T, H, W, 3)`` or ``(B, T, H, W, 3)`` pointmaps in the world the cameras were recovered in.
        cameras: :class:`CameraEstimate` of those points (`recover_cameras`).
        in_place: move ``points`` itself (a chunk of pixels at a time) instead of a copy, so a long video's
            pointmaps are never held twice; ``points`` must then be contiguous.
    Returns:
        ``(points, cameras)`` with ``cameras.c2w[..., 0, :, :]`` exactly the identity.
    """
    world_to_first = invert_rigid(cameras.c2w[..., 0, :, :])  # (..., 4, 4)
    c2w = world_to_first.unsqueeze(-3) @ cameras.c2w
    c2w[..., 0, :, :] = torch.eye(4, dtype=c2w.dtype, device=c2w.device)
    transform = world_to_first.to(points.dtype)
    if not in_place:
        moved = transform_points(transform, points.flatten(-4, -2)).reshape(points.shape)
        return moved, replace(cameras, c2w=c2w)
    flat = points.view(*points.shape[:-4], -1, 3)
    for first in range(0, flat.shape[-2], PREPARE_CHUNK_PIXELS):
        part = flat[..., first:first + PREPARE_CHUNK_PIXELS, :]
        part.copy_(transform_points(transform, part))
    return points, replace(cameras, c2w=c2w)


def linear_cameras(
    points: torch.Tensor,
    weights: torch.Tensor | None = None,
    K: torch.Tensor | None = None,
    principal_point: torch.Tensor | Sequence[float] | None = None,
    max_fit_pixels: int = 16384,
) -> CameraEstimate:
    """Plain least-squares baseline: one weighted DLT per frame over the fit pixels, no robust steps.

    Same arguments and output as :func:`recover_cameras`; exact on clean pointmaps, not robust to outliers
    (the per-frame poses keep their own DLT focal; ``K`` reports the median over frames).
    """
    _validate(points, weights, K, principal_point, "linear_cameras")
    problem = _setup(points, weights, K, principal_point, max_fit_pixels, "linear_cameras")
    frames = problem.frames
    focal, rotation, translation = _decompose(_dlt(frames.points, frames.pixels, frames.weights))
    return _finish(problem, _clip_focal(problem, focal), rotation, translation)
