"""`benchmarks/bench_rotation.py`'s image-motion measure: 1 for a camera that only turns, small for one that circles
what it films (rotation and translation cancel in the image), and the realistic preset has such clips."""

import math

import pytest
import torch

from repo_modules import load_repo_module
from sora3r.types import VideoSequence


@pytest.fixture(scope="module")
def bench():
    return load_repo_module("benchmarks", "bench_rotation")


def _wall_clip(c2w_last: torch.Tensor, depth: float = 2.0, size: int = 24, focal: float = 20.0) -> VideoSequence:
    """Two frames of a fronto-parallel wall at ``depth`` seen from the identity camera, then from ``c2w_last``."""
    K = torch.tensor([[focal, 0.0, (size - 1) / 2], [0.0, focal, (size - 1) / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    v, u = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64),
                          indexing="ij")
    points = torch.stack([(u - K[0, 2]) / focal * depth, (v - K[1, 2]) / focal * depth,
                          torch.full_like(u, depth)], dim=-1)
    return VideoSequence(name="wall", rgb=torch.zeros(2, size, size, 3, dtype=torch.uint8), K=K,
                         c2w=torch.stack([torch.eye(4, dtype=torch.float64), c2w_last]),
                         points=points.expand(2, -1, -1, -1).clone(), valid=torch.ones(2, size, size, dtype=torch.bool))


def _yaw(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)  # about the camera's y


def test_turning_alone_is_one_and_circling_the_wall_centre_is_small(bench):
    angle, depth = math.radians(8.0), 2.0
    turned = torch.eye(4, dtype=torch.float64)
    turned[:3, :3] = _yaw(angle)
    assert bench.motion_ratio(_wall_clip(turned, depth)) == pytest.approx(1.0, abs=1e-9)
    assert bench.turn(bench.first_to_last(_wall_clip(turned).c2w)) == pytest.approx(8.0, abs=1e-6)
    # The camera moves on a circle around the wall's centre (2 m ahead) and turns to keep it in the middle.
    circled = turned.clone()
    centre = torch.tensor([0.0, 0.0, depth], dtype=torch.float64)
    circled[:3, 3] = centre - _yaw(angle) @ centre
    assert bench.motion_ratio(_wall_clip(circled, depth)) < 0.3


def test_the_realistic_preset_has_clips_that_circle_what_they_film(bench):
    clips = bench.circling_clips(2, (9, 24, 32), max_seeds=40)
    assert len(clips) == 2 and all(bench.motion_ratio(clip) < bench.CIRCLING_BELOW for clip in clips)
