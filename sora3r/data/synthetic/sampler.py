"""Seeded float64 draws on the CPU and the small rotation helpers the scene samplers share.

World frame of a scene: z up. Cameras follow OpenCV axes (x right, y down, z forward); poses are camera-to-world.
"""

from __future__ import annotations

import math

import torch

F64 = torch.float64


class Sampler:
    """Thin wrapper over a seeded CPU generator (float64 draws)."""

    def __init__(self, seed: int):
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=self.generator, dtype=F64))

    def log_uniform(self, lo: float, hi: float) -> float:
        return math.exp(self.uniform(math.log(lo), math.log(hi)))

    def vector(self, lo, hi) -> torch.Tensor:
        lo, hi = torch.as_tensor(lo, dtype=F64), torch.as_tensor(hi, dtype=F64)
        return lo + (hi - lo) * torch.rand(lo.shape, generator=self.generator, dtype=F64)

    def integer(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi] (inclusive)."""
        return int(torch.randint(lo, hi + 1, (), generator=self.generator))

    def chance(self, p: float) -> bool:
        return self.uniform() < p

    def sign(self) -> float:
        return 1.0 if self.chance(0.5) else -1.0

    def unit_vector(self) -> torch.Tensor:
        v = torch.randn(3, generator=self.generator, dtype=F64)
        return v / v.norm()


def direction(yaw: torch.Tensor | float, pitch: torch.Tensor | float) -> torch.Tensor:
    """Unit vectors ``(..., 3)`` for yaw about +z (from +x) and pitch above the horizon (radians)."""
    yaw, pitch = torch.broadcast_tensors(torch.as_tensor(yaw, dtype=F64), torch.as_tensor(pitch, dtype=F64))
    return torch.stack([pitch.cos() * yaw.cos(), pitch.cos() * yaw.sin(), pitch.sin()], dim=-1)


def axis_angle_matrix(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: rotations ``(..., 3, 3)`` about unit ``axis (3,)`` by ``angle (...)`` radians."""
    angle = torch.as_tensor(angle, dtype=F64)
    x, y, z = axis.tolist()
    cross = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], dtype=F64)
    s, c = angle.sin()[..., None, None], angle.cos()[..., None, None]
    return torch.eye(3, dtype=F64) + s * cross + (1 - c) * (cross @ cross)


def look_at(eye: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """OpenCV camera-to-world ``(T, 4, 4)`` at ``eye (T, 3)`` looking at ``target (T, 3)``, world z up."""
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=F64).expand_as(forward)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, up), dim=-1)
    down = torch.linalg.cross(forward, right)
    c2w = torch.eye(4, dtype=F64).repeat(eye.shape[0], 1, 1)
    c2w[:, :3, :3] = torch.stack([right, down, forward], dim=-1)
    c2w[:, :3, 3] = eye
    return c2w
