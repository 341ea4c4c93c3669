"""Camera paths of synthetic scenes: orbit, walk, pan and track (the classic kinds), the hand-held kind of casual
phone footage, and hand-held jitter on top of any path. All on the CPU in float64, from one `Sampler`.

Poses are OpenCV camera-to-world ``(T, 4, 4)``; world z is up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sora3r.data.synthetic.sampler import F64, Sampler, axis_angle_matrix, direction, look_at

CLASSIC_PATHS = ("orbit", "walk", "pan", "track")
PATH_KINDS = (*CLASSIC_PATHS, "handheld")


@dataclass(frozen=True)
class Arena:
    """Where the camera may be (an axis-aligned box) and how big the content is."""

    eye_lo: torch.Tensor
    eye_hi: torch.Tensor
    centre: torch.Tensor  # scene centre on the ground
    scale: float  # typical distance from the camera to content, metres


def camera_path(rng: Sampler, kind: str, arena: Arena, times: torch.Tensor) -> torch.Tensor:
    """Camera-to-world poses ``(T, 4, 4)`` of one path kind (before hand-held shake)."""
    duration = float(times[-1]) if len(times) > 1 else 1.0
    u = times / duration  # 0..1 along the clip
    eye0 = rng.vector(arena.eye_lo, arena.eye_hi)
    pitch = math.radians(rng.uniform(-20.0, 5.0))
    to_centre = float(torch.atan2(arena.centre[1] - eye0[1], arena.centre[0] - eye0[0]))
    if kind == "orbit":
        centre = arena.centre + torch.cat([rng.vector([-0.1, -0.1], [0.1, 0.1]) * arena.scale,
                                           torch.zeros(1, dtype=F64)])
        room_for_radius = torch.minimum(arena.eye_hi[:2] - centre[:2], centre[:2] - arena.eye_lo[:2]).min()
        radius = rng.uniform(0.5, 1.0) * float(room_for_radius)
        angle = rng.uniform(0, 2 * math.pi) + rng.sign() * math.radians(rng.uniform(10, 40)) * times
        eye = torch.stack([centre[0] + radius * angle.cos(), centre[1] + radius * angle.sin(),
                           torch.full_like(times, float(eye0[2]))], dim=-1)
        target = centre + torch.tensor([0.0, 0.0, rng.uniform(0.3, 1.2)], dtype=F64)
        return look_at(eye, target.expand_as(eye))
    if kind == "walk":
        goal = rng.vector(arena.eye_lo, arena.eye_hi)
        goal[2] = eye0[2]
        step = goal - eye0
        speed = rng.uniform(0.25, 0.4) * arena.scale  # metres per second
        if float(step.norm()) > speed * duration:
            step = step / step.norm() * speed * duration
        heading = float(torch.atan2(step[1], step[0])) if float(step.norm()) > 1e-3 else to_centre
        eye = eye0 + u[:, None] * step
        eye[:, 2] += rng.uniform(0.0, 0.02) * (2 * math.pi * 1.8 * times).sin()  # walking bob
        wobble = math.radians(rng.uniform(0.0, 8.0)) * (2 * math.pi * 0.3 * times + rng.uniform(0, 6.3)).sin()
        return look_at(eye, eye + direction(heading + wobble, pitch))
    if kind == "pan":
        yaw = to_centre + math.radians(rng.uniform(-60, 60)) + rng.sign() * math.radians(rng.uniform(15, 45)) * times
        eye = eye0.expand(len(times), 3)
        return look_at(eye, eye + direction(yaw, torch.full_like(times, pitch)))
    if kind == "track":
        yaw = to_centre + math.radians(rng.uniform(-30, 30))
        side = torch.tensor([-math.sin(yaw), math.cos(yaw), 0.0], dtype=F64)
        travel = rng.sign() * rng.uniform(0.15, 0.35) * arena.scale * duration
        start = torch.maximum(torch.minimum(eye0 - side * travel / 2, arena.eye_hi), arena.eye_lo)
        end = torch.maximum(torch.minimum(eye0 + side * travel / 2, arena.eye_hi), arena.eye_lo)
        eye = start + u[:, None] * (end - start)
        if rng.chance(0.5):  # keep looking at one point
            target = eye0 + direction(yaw, pitch) * arena.scale
            return look_at(eye, target.expand_as(eye))
        return look_at(eye, eye + direction(yaw, pitch))
    if kind == "handheld":
        return _handheld(rng, arena, times, eye0, to_centre)
    raise ValueError(f"unknown camera path kind {kind!r}; expected one of {PATH_KINDS}")


def add_shake(rng: Sampler, c2w: torch.Tensor, times: torch.Tensor, scale: float) -> torch.Tensor:
    """Hand-held jitter: smooth small rotations (< ~2 deg) and translations (~1 cm) on each pose."""

    def wiggle(amplitude: float) -> torch.Tensor:
        return sum(amplitude * rng.uniform(0.3, 1.0)
                   * (2 * math.pi * rng.uniform(1.0, 4.0) * times + rng.uniform(0, 6.3)).sin() for _ in range(2))

    rot = torch.eye(3, dtype=F64).expand(len(times), 3, 3)
    for axis in torch.eye(3, dtype=F64):
        rot = rot @ axis_angle_matrix(axis, wiggle(math.radians(rng.uniform(0.2, 1.0))))
    shaken = c2w.clone()
    shaken[:, :3, :3] = c2w[:, :3, :3] @ rot
    offset = torch.stack([wiggle(0.01 * max(1.0, scale / 4)) for _ in range(3)], dim=-1)
    shaken[:, :3, 3] += offset
    return shaken


def _random_walk(rng: Sampler, times: torch.Tensor, amplitude: float, band: tuple[float, float] = (0.1, 2.0),
                 waves: int = 6) -> torch.Tensor:
    """A smooth random walk ``(T,)``, zero at ``times[0]``: ``waves`` sinusoids at log-uniform frequencies in ``band``
    (Hz) with amplitude ~ 1/f (the 1/f^2 power of Brownian motion, band-limited), scaled to RMS ``amplitude``."""
    walk = torch.zeros_like(times)
    for _ in range(waves):
        frequency = rng.log_uniform(*band)
        walk = walk + (2 * math.pi * frequency * times + rng.uniform(0, 2 * math.pi)).sin() / frequency
    walk = walk - walk[0]
    rms = float(walk.square().mean().sqrt())
    return walk * (amplitude / rms) if rms > 0 else walk


def _fit_inside(eye: torch.Tensor, arena: Arena) -> torch.Tensor:
    """Shrink the path ``(T, 3)`` towards its first position until every position lies in the arena."""
    offset = eye - eye[0]
    room = torch.where(offset > 0, arena.eye_hi - eye[0], eye[0] - arena.eye_lo).clamp(min=0.0)
    need = offset.abs()
    ratio = torch.where(need > room, room / need.clamp(min=1e-12), torch.ones_like(need))
    return eye[0] + offset * float(ratio.min())


def _handheld(rng: Sampler, arena: Arena, times: torch.Tensor, eye0: torch.Tensor, to_centre: float) -> torch.Tensor:
    """Casual phone footage: the hand drifts in a smooth random walk (a few cm to a few dm) while the view wanders a
    few degrees in yaw, pitch and roll; sometimes the person walks forward or sideways, sometimes pans smoothly over
    part of the clip; 40 % of the time the person films one thing while moving around it (see below) instead of walking
    or panning."""
    duration = float(times[-1]) if len(times) > 1 else 1.0
    yaw = to_centre + math.radians(rng.uniform(-70.0, 70.0)) + _random_walk(rng, times, math.radians(
        rng.uniform(0.5, 5.0)))
    pitch = math.radians(rng.uniform(-35.0, 10.0)) + _random_walk(rng, times, math.radians(rng.uniform(0.3, 3.0)))
    roll = math.radians(rng.uniform(-4.0, 4.0)) + _random_walk(rng, times, math.radians(rng.uniform(0.2, 2.0)))
    fixate = rng.chance(0.4)
    if not fixate and rng.chance(0.35):  # a smooth pan over part of the clip, at most 60 deg/s on average (90 at peak)
        angle = rng.uniform(15.0, 70.0)
        start, span = rng.uniform(0.0, 0.5) * duration, max(rng.uniform(0.4, 1.0) * duration, angle / 60.0)
        s = ((times - start) / span).clamp(0.0, 1.0)
        yaw = yaw + rng.sign() * math.radians(angle) * s * s * (3 - 2 * s)
    drift = torch.stack([_random_walk(rng, times, rng.log_uniform(0.01, 0.1) * max(1.0, arena.scale / 6),
                                      band=(0.1, 1.0)) for _ in range(3)], dim=-1)
    drift[:, 2] *= 0.5
    eye = eye0 + drift
    if not fixate and rng.chance(0.5):  # walking forward (or sideways), along the initial heading
        heading = float(yaw[0]) + (0.0 if rng.chance(0.75) else rng.sign() * math.pi / 2)
        speed = rng.uniform(0.2, 1.2) * min(1.0, arena.scale / 3)  # metres per second
        eye = eye + speed * times[:, None] * direction(heading, 0.0)
        eye[:, 2] += rng.uniform(0.0, 0.03) * (2 * math.pi * rng.uniform(1.6, 2.2) * times).sin()  # steps
    if fixate:
        # Filming one thing while moving around it: the hand moves sideways and the view turns to keep a point 0.8-2.5 m
        # away (more in open scenes) in sight, so the image motion of the rotation and of the translation largely
        # cancel. Casual footage often does this; the ICL-NUIM living room's camera moves this way (the median image
        # motion over 17 frames is under half what its rotation alone would make), and a model that seldom saw it
        # reads the small image motion as a small rotation (benchmarks/bench_rotation.py).
        distance = rng.uniform(0.8, 2.5) * max(1.0, arena.scale / 4)
        target = eye[0] + distance * direction(float(yaw[0]), float(pitch[0]))
        target[2] = max(float(target[2]), 0.1)
        side = direction(float(yaw[0]) + rng.sign() * math.pi / 2, 0.0)
        eye = eye + rng.uniform(0.1, 0.5) * min(1.0, arena.scale / 3) * times[:, None] * side  # metres per second
    eye = _fit_inside(eye, arena)
    if fixate:
        look = target - eye
        yaw = torch.atan2(look[:, 1], look[:, 0]) + (yaw - yaw[0])  # the wander stays on top
        pitch = torch.atan2(look[:, 2], look[:, :2].norm(dim=-1)) + (pitch - pitch[0])
    c2w = look_at(eye, eye + direction(yaw, pitch))
    c2w[:, :3, :3] = c2w[:, :3, :3] @ axis_angle_matrix(torch.tensor([0.0, 0.0, 1.0], dtype=F64), roll)
    return c2w
