"""Per-seed sampling of a synthetic dynamic scene: environment, camera path, objects, textures, light.

Everything here runs on the CPU in float64 with one ``torch.Generator`` per seed, so a scene depends on
its seed alone. World frame of a scene: z up, floor / ground at z = 0, scene centre above the origin.
Cameras follow OpenCV axes (x right, y down, z forward); poses are camera-to-world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sora3r.data.synthetic.raycast import (
    NUM_ENV_SURFACES, NUM_WAVES, PRIMITIVES, TEX_CHECKER_OFFSET, TEX_CHECKER_SIZE, TEX_CHECKER_WEIGHT,
    TEX_CONTRAST, TEX_EMISSIVE, TEX_FREQ, TEX_FREQ_NORM, TEX_PALETTE, TEX_PHASE, TEX_SIZE, TEX_WEIGHT, environment_hit,
)
from sora3r.geometry.projection import focal_from_fov, image_centre, intrinsics_matrix

ENVIRONMENTS = ("room", "open")
PATH_KINDS = ("orbit", "walk", "pan", "track")

_F64 = torch.float64
_CAMERA_WALL_MARGIN = 0.3  # metres between a room camera and the walls


@dataclass(frozen=True)
class SyntheticConfig:
    """Clip size and the ranges scenes are drawn from.

    Attributes:
        num_frames, height, width: clip size ``T, H, W``.
        fps: frame rate used for motion speeds and timestamps.
        fov_deg: range of the horizontal field of view (degrees); square pixels, centred principal point.
        num_objects: inclusive range of the number of movable-size objects (at least one moves,
            at least one stays still).
        room_probability: chance that a scene is a room (else open ground with a far backdrop).
        room_side: range of a room's floor side lengths (metres).
        open_radius: range of the distance to the backdrop dome of open scenes (metres).
        shake_probability: chance of hand-held jitter on top of the camera path.
        chunk_rays: rays traced at once (memory bound); ``None`` picks 2**20 on CPU, 2**24 on CUDA.
            Output does not depend on it.
    """

    num_frames: int = 17
    height: int = 128
    width: int = 128
    fps: float = 10.0
    fov_deg: tuple[float, float] = (40.0, 100.0)
    num_objects: tuple[int, int] = (3, 8)
    room_probability: float = 0.5
    room_side: tuple[float, float] = (3.0, 10.0)
    open_radius: tuple[float, float] = (30.0, 100.0)
    shake_probability: float = 0.5
    chunk_rays: int | None = None

    def __post_init__(self) -> None:
        if self.num_frames < 1 or self.height < 2 or self.width < 2:
            raise ValueError(f"SyntheticConfig: clip size must be >= 1x2x2, got "
                             f"{self.num_frames}x{self.height}x{self.width}")
        if self.fps <= 0:
            raise ValueError(f"SyntheticConfig: fps must be positive, got {self.fps}")
        if not 1.0 <= self.fov_deg[0] <= self.fov_deg[1] < 170.0:
            raise ValueError(f"SyntheticConfig: fov_deg must be an increasing range in [1, 170), got {self.fov_deg}")
        if not 2 <= self.num_objects[0] <= self.num_objects[1]:
            raise ValueError(f"SyntheticConfig: num_objects must be a range with minimum >= 2 "
                             f"(one moving, one static), got {self.num_objects}")
        if not 2.0 <= self.room_side[0] <= self.room_side[1]:
            raise ValueError(f"SyntheticConfig: room_side must be an increasing range >= 2 m, got {self.room_side}")
        if not 10.0 <= self.open_radius[0] <= self.open_radius[1]:
            raise ValueError(f"SyntheticConfig: open_radius must be an increasing range >= 10 m, "
                             f"got {self.open_radius}")
        for name in ("room_probability", "shake_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SyntheticConfig: {name} must be in [0, 1], got {getattr(self, name)}")
        if self.chunk_rays is not None and self.chunk_rays < 1:
            raise ValueError(f"SyntheticConfig: chunk_rays must be positive, got {self.chunk_rays}")


@dataclass(frozen=True)
class SyntheticScene:
    """One sampled scene (CPU, float64). ``M`` objects, ``T`` frames, ``S = 6 + M`` textured surfaces.

    Attributes:
        seed, environment ("room" | "open"), path_kind (one of PATH_KINDS), shake: what was drawn.
        K: ``(3, 3)`` intrinsics in pixels (pixel centres at integer coordinates).
        c2w: ``(T, 4, 4)`` camera-to-world poses, OpenCV axes.
        room: ``(3,)`` half width x, half depth y, height z of the room box (room scenes).
        dome_radius: radius of the backdrop sphere around the origin (open scenes).
        object_kind: ``M`` names from PRIMITIVES.
        object_scale: ``(M, 3)`` half extents (box), semi-axes (sphere -> ellipsoid), radii and half
            height (cylinder, axis = local z), metres.
        object_rotation: ``(T, M, 3, 3)`` object-to-world rotations.
        object_position: ``(T, M, 3)`` object centres in the world.
        object_dynamic: ``(M,)`` bool, True for objects that move or rotate.
        surfaces: ``(S, TEX_SIZE)`` texture rows; surfaces 0..5 belong to the environment, 6 + i to object i.
        light_dir: ``(3,)`` unit vector towards the directional light; ambient: ambient fraction in (0, 1);
        light_colour: ``(3,)`` RGB multiplier.
    """

    seed: int
    environment: str
    path_kind: str
    shake: bool
    K: torch.Tensor
    c2w: torch.Tensor
    room: torch.Tensor
    dome_radius: float
    object_kind: tuple[str, ...]
    object_scale: torch.Tensor
    object_rotation: torch.Tensor
    object_position: torch.Tensor
    object_dynamic: torch.Tensor
    surfaces: torch.Tensor
    light_dir: torch.Tensor
    ambient: float
    light_colour: torch.Tensor


@dataclass(frozen=True)
class _Arena:
    """Where the camera may be (an axis-aligned box) and how big the content is."""

    eye_lo: torch.Tensor
    eye_hi: torch.Tensor
    centre: torch.Tensor  # scene centre on the ground
    scale: float  # typical distance from the camera to content, metres


class _Sampler:
    """Thin wrapper over a seeded CPU generator (float64 draws)."""

    def __init__(self, seed: int):
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=self.generator, dtype=_F64))

    def log_uniform(self, lo: float, hi: float) -> float:
        return math.exp(self.uniform(math.log(lo), math.log(hi)))

    def vector(self, lo, hi) -> torch.Tensor:
        lo, hi = torch.as_tensor(lo, dtype=_F64), torch.as_tensor(hi, dtype=_F64)
        return lo + (hi - lo) * torch.rand(lo.shape, generator=self.generator, dtype=_F64)

    def integer(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi] (inclusive)."""
        return int(torch.randint(lo, hi + 1, (), generator=self.generator))

    def chance(self, p: float) -> bool:
        return self.uniform() < p

    def sign(self) -> float:
        return 1.0 if self.chance(0.5) else -1.0

    def unit_vector(self) -> torch.Tensor:
        v = torch.randn(3, generator=self.generator, dtype=_F64)
        return v / v.norm()


def _direction(yaw: torch.Tensor | float, pitch: torch.Tensor | float) -> torch.Tensor:
    """Unit vectors ``(..., 3)`` for yaw about +z (from +x) and pitch above the horizon (radians)."""
    yaw, pitch = torch.broadcast_tensors(torch.as_tensor(yaw, dtype=_F64), torch.as_tensor(pitch, dtype=_F64))
    return torch.stack([pitch.cos() * yaw.cos(), pitch.cos() * yaw.sin(), pitch.sin()], dim=-1)


def axis_angle_matrix(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues: rotations ``(..., 3, 3)`` about unit ``axis (3,)`` by ``angle (...)`` radians."""
    angle = torch.as_tensor(angle, dtype=_F64)
    x, y, z = axis.tolist()
    cross = torch.tensor([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]], dtype=_F64)
    s, c = angle.sin()[..., None, None], angle.cos()[..., None, None]
    return torch.eye(3, dtype=_F64) + s * cross + (1 - c) * (cross @ cross)


def look_at(eye: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """OpenCV camera-to-world ``(T, 4, 4)`` at ``eye (T, 3)`` looking at ``target (T, 3)``, world z up."""
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=_F64).expand_as(forward)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, up), dim=-1)
    down = torch.linalg.cross(forward, right)
    c2w = torch.eye(4, dtype=_F64).repeat(eye.shape[0], 1, 1)
    c2w[:, :3, :3] = torch.stack([right, down, forward], dim=-1)
    c2w[:, :3, 3] = eye
    return c2w


def _arena(rng: _Sampler, environment: str, config: SyntheticConfig) -> tuple[_Arena, torch.Tensor, float]:
    """Camera region and environment size: (arena, room half sizes + height, dome radius)."""
    if environment == "room":
        half = torch.tensor([rng.uniform(*config.room_side) / 2, rng.uniform(*config.room_side) / 2], dtype=_F64)
        height = rng.uniform(2.4, 3.6)
        m = _CAMERA_WALL_MARGIN
        arena = _Arena(eye_lo=torch.tensor([-half[0] + m, -half[1] + m, 1.0], dtype=_F64),
                       eye_hi=torch.tensor([half[0] - m, half[1] - m, min(1.9, height - 0.4)], dtype=_F64),
                       centre=torch.zeros(3, dtype=_F64), scale=float(half.min()))
        return arena, torch.tensor([half[0], half[1], height], dtype=_F64), 0.0
    radius = rng.uniform(*config.open_radius)
    reach = 0.15 * radius
    arena = _Arena(eye_lo=torch.tensor([-reach, -reach, 1.2], dtype=_F64),
                   eye_hi=torch.tensor([reach, reach, 6.0], dtype=_F64),
                   centre=torch.zeros(3, dtype=_F64), scale=max(4.0, 0.12 * radius))
    return arena, torch.zeros(3, dtype=_F64), radius


def _camera_path(rng: _Sampler, kind: str, arena: _Arena, times: torch.Tensor) -> torch.Tensor:
    """Camera-to-world poses ``(T, 4, 4)`` of one path kind (before hand-held shake)."""
    duration = float(times[-1]) if len(times) > 1 else 1.0
    u = times / duration  # 0..1 along the clip
    eye0 = rng.vector(arena.eye_lo, arena.eye_hi)
    pitch = math.radians(rng.uniform(-20.0, 5.0))
    to_centre = float(torch.atan2(arena.centre[1] - eye0[1], arena.centre[0] - eye0[0]))
    if kind == "orbit":
        centre = arena.centre + torch.cat([rng.vector([-0.1, -0.1], [0.1, 0.1]) * arena.scale,
                                           torch.zeros(1, dtype=_F64)])
        room_for_radius = torch.minimum(arena.eye_hi[:2] - centre[:2], centre[:2] - arena.eye_lo[:2]).min()
        radius = rng.uniform(0.5, 1.0) * float(room_for_radius)
        angle = rng.uniform(0, 2 * math.pi) + rng.sign() * math.radians(rng.uniform(10, 40)) * times
        eye = torch.stack([centre[0] + radius * angle.cos(), centre[1] + radius * angle.sin(),
                           torch.full_like(times, float(eye0[2]))], dim=-1)
        target = centre + torch.tensor([0.0, 0.0, rng.uniform(0.3, 1.2)], dtype=_F64)
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
        return look_at(eye, eye + _direction(heading + wobble, pitch))
    if kind == "pan":
        yaw = to_centre + math.radians(rng.uniform(-60, 60)) + rng.sign() * math.radians(rng.uniform(15, 45)) * times
        eye = eye0.expand(len(times), 3)
        return look_at(eye, eye + _direction(yaw, torch.full_like(times, pitch)))
    if kind == "track":
        yaw = to_centre + math.radians(rng.uniform(-30, 30))
        side = torch.tensor([-math.sin(yaw), math.cos(yaw), 0.0], dtype=_F64)
        travel = rng.sign() * rng.uniform(0.15, 0.35) * arena.scale * duration
        start = torch.maximum(torch.minimum(eye0 - side * travel / 2, arena.eye_hi), arena.eye_lo)
        end = torch.maximum(torch.minimum(eye0 + side * travel / 2, arena.eye_hi), arena.eye_lo)
        eye = start + u[:, None] * (end - start)
        if rng.chance(0.5):  # keep looking at one point
            target = eye0 + _direction(yaw, pitch) * arena.scale
            return look_at(eye, target.expand_as(eye))
        return look_at(eye, eye + _direction(yaw, pitch))
    raise ValueError(f"unknown camera path kind {kind!r}; expected one of {PATH_KINDS}")


def _shake(rng: _Sampler, c2w: torch.Tensor, times: torch.Tensor, scale: float) -> torch.Tensor:
    """Hand-held jitter: smooth small rotations (< ~2 deg) and translations (~1 cm) on each pose."""

    def wiggle(amplitude: float) -> torch.Tensor:
        return sum(amplitude * rng.uniform(0.3, 1.0)
                   * (2 * math.pi * rng.uniform(1.0, 4.0) * times + rng.uniform(0, 6.3)).sin() for _ in range(2))

    rot = torch.eye(3, dtype=_F64).expand(len(times), 3, 3)
    for axis in torch.eye(3, dtype=_F64):
        rot = rot @ axis_angle_matrix(axis, wiggle(math.radians(rng.uniform(0.2, 1.0))))
    shaken = c2w.clone()
    shaken[:, :3, :3] = c2w[:, :3, :3] @ rot
    offset = torch.stack([wiggle(0.01 * max(1.0, scale / 4)) for _ in range(3)], dim=-1)
    shaken[:, :3, 3] += offset
    return shaken


def _intrinsics(rng: _Sampler, config: SyntheticConfig) -> torch.Tensor:
    """``float64 (3, 3)``: a horizontal field of view drawn from ``config.fov_deg``, square pixels, centred."""
    focal = focal_from_fov(config.width, rng.uniform(*config.fov_deg))
    return intrinsics_matrix(focal, focal, *image_centre(config.height, config.width), dtype=_F64)


def _inside(position: torch.Tensor, radius: float, environment: str, room: torch.Tensor,
            dome_radius: float, resting: bool) -> bool:
    """Whether an object (bounding radius) stays inside the environment at all frames ``(T, 3)``."""
    if environment == "room":
        inside = (position[:, :2].abs() + radius <= room[:2]).all() and (position[:, 2] + radius <= room[2]).all()
    else:
        inside = (position[:, :2].norm(dim=-1) + radius <= 0.8 * dome_radius).all()
    return bool(inside) and (resting or bool((position[:, 2] - radius >= 0).all()))


def _place_in_view(rng: _Sampler, K: torch.Tensor, c2w: torch.Tensor, environment: str, room: torch.Tensor,
                   dome_radius: float) -> torch.Tensor:
    """A world point seen near the middle of the middle frame, in front of the environment."""
    pixel = torch.tensor([rng.uniform(0.2, 0.8) * 2 * K[0, 2], rng.uniform(0.3, 0.8) * 2 * K[1, 2], 1.0], dtype=_F64)
    ray = c2w[:3, :3] @ (torch.linalg.inv(K) @ pixel)
    origin = c2w[:3, 3]
    reach = environment_hit(origin[None], ray[None], environment == "room", room, dome_radius)
    return origin + ray * rng.uniform(0.35, 0.85) * float(reach[0])


@dataclass(frozen=True)
class _Stage:
    """What object placement needs to know of a scene: its environment and the camera of the middle frame."""

    environment: str
    room: torch.Tensor
    dome_radius: float
    K: torch.Tensor
    view_c2w: torch.Tensor  # (4, 4) camera of the middle frame, which most objects are placed in front of
    size: tuple[float, float]  # range of object sizes (metres)
    speed: tuple[float, float]  # range of object speeds (metres per second)


def _object_centre(rng: _Sampler, stage: _Stage, landmark: bool, in_view: bool) -> torch.Tensor:
    """Where an object stands: a landmark on the open ground, in view of the middle frame, or anywhere."""
    if landmark:
        angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(0.3, 0.7) * stage.dome_radius
        return torch.tensor([distance * math.cos(angle), distance * math.sin(angle), 0.0], dtype=_F64)
    if in_view or rng.chance(0.6):
        return _place_in_view(rng, stage.K, stage.view_c2w, stage.environment, stage.room, stage.dome_radius)
    extent = stage.room[:2] if stage.environment == "room" else torch.full((2,), 0.5 * stage.dome_radius, dtype=_F64)
    return torch.cat([rng.vector(-extent, extent), torch.zeros(1, dtype=_F64)])


def _object_motion(rng: _Sampler, stage: _Stage, scale: torch.Tensor, base: torch.Tensor, position: torch.Tensor,
                   resting: bool, times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``(T, 3)`` and rotations ``(T, 3, 3)`` of a moving object: a drift through the middle frame plus a
    sinusoidal swing (horizontal for resting objects), and often a spin."""
    mid = len(times) // 2
    velocity = _direction(rng.uniform(0, 2 * math.pi), 0.0) * rng.uniform(*stage.speed)
    swing = rng.vector([0.0] * 3, [0.3] * 3) * scale.max()
    if resting:
        swing[2] = 0.0
    phase = rng.vector([0.0] * 3, [2 * math.pi] * 3)
    frequency = rng.vector([0.2] * 3, [1.0] * 3)
    position = position + velocity * (times - times[mid])[:, None] \
        + swing * torch.sin(2 * math.pi * frequency * times[:, None] + phase)
    rotation = base.expand(len(times), 3, 3)
    if rng.chance(0.7):
        axis = torch.tensor([0.0, 0.0, 1.0], dtype=_F64) if resting else rng.unit_vector()
        spin = rng.sign() * rng.uniform(0.3, 2.5)
        rotation = axis_angle_matrix(axis, spin * times) @ base
    return position, rotation


def _draw_object(rng: _Sampler, stage: _Stage, kind: str, moving: bool, landmark: bool, in_view: bool,
                 times: torch.Tensor):
    """One attempt at an object: ``(scale (3,), bounding radius, resting, positions (T, 3), rotations (T, 3, 3))``."""
    if landmark:
        scale = rng.vector([1.5, 1.5, 2.0], [6.0, 6.0, 12.0])
    else:
        scale = rng.log_uniform(*stage.size) * rng.vector([0.6] * 3, [1.5] * 3)
    if kind in ("sphere", "cylinder"):
        scale[1] = scale[0]  # round cross-section for most; ellipsoids keep distinct z
    radius = float(scale.norm())
    centre = _object_centre(rng, stage, landmark, in_view)
    resting = not moving or rng.chance(0.5)
    base = axis_angle_matrix(torch.tensor([0.0, 0.0, 1.0], dtype=_F64), rng.uniform(0, 2 * math.pi))
    if resting:
        centre[2] = scale[2]
    else:
        centre[2] = max(float(centre[2]), radius)
        base = axis_angle_matrix(rng.unit_vector(), rng.uniform(0, math.pi)) @ base
    position = centre.expand(len(times), 3).clone()
    if moving:
        position, rotation = _object_motion(rng, stage, scale, base, position, resting, times)
    else:
        rotation = base.expand(len(times), 3, 3)
    return scale, radius, resting, position, rotation


def _objects(rng: _Sampler, config: SyntheticConfig, environment: str, arena: _Arena, room: torch.Tensor,
             dome_radius: float, K: torch.Tensor, c2w: torch.Tensor, times: torch.Tensor):
    """Objects as (kinds, scales (M,3), rotations (T,M,3,3), positions (T,M,3), dynamic (M,)).

    Each object gets up to 30 draws to find a placement clear of the camera path (by 25 cm) and inside the
    environment; one that finds none is left out.
    """
    count = rng.integer(*config.num_objects)
    num_dynamic = rng.integer(1, count - 1)
    eyes = c2w[:, :3, 3]
    room_scene = environment == "room"
    stage = _Stage(environment, room, dome_radius, K, c2w[len(times) // 2],
                   size=(0.08, 0.45) if room_scene else (0.3, 2.5), speed=(0.1, 0.6) if room_scene else (0.5, 3.0))
    kinds, scales, rotations, positions, dynamic = [], [], [], [], []
    landmarks = rng.integer(0, 3) if environment == "open" else 0
    for index in range(count + landmarks):
        moving = index < num_dynamic
        landmark = index >= count
        kind = PRIMITIVES[rng.integer(0, 2)] if not landmark else ("box", "cylinder")[rng.integer(0, 1)]
        for _attempt in range(30):
            scale, radius, resting, position, rotation = _draw_object(rng, stage, kind, moving, landmark,
                                                                      moving and index == 0, times)
            clear = ((position - eyes).norm(dim=-1) > radius + 0.25).all()
            if bool(clear) and _inside(position, radius if not resting else float(scale[:2].norm()),
                                       environment, room, dome_radius, resting):
                kinds.append(kind)
                scales.append(scale)
                rotations.append(rotation)
                positions.append(position)
                dynamic.append(moving)
                break
    return (tuple(kinds), torch.stack(scales) if scales else torch.zeros(0, 3, dtype=_F64),
            torch.stack(rotations, dim=1) if rotations else torch.zeros(len(times), 0, 3, 3, dtype=_F64),
            torch.stack(positions, dim=1) if positions else torch.zeros(len(times), 0, 3, dtype=_F64),
            torch.tensor(dynamic, dtype=torch.bool))


def _texture(rng: _Sampler, wavelength: tuple[float, float], sky: bool = False) -> torch.Tensor:
    """One surface's texture row: waves at several scales, optional checkers, a 3-colour palette."""
    row = torch.zeros(TEX_SIZE, dtype=_F64)
    # wavelengths spread log-uniformly over the range, so every surface has coarse and fine detail
    lo, hi = math.log(wavelength[0]), math.log(wavelength[1])
    for k in range(NUM_WAVES):
        span = (hi - lo) / NUM_WAVES
        length = math.exp(rng.uniform(lo + k * span, lo + (k + 1) * span))
        row[TEX_FREQ][3 * k:3 * k + 3] = rng.unit_vector() / length
        row[TEX_FREQ_NORM.start + k] = 1.0 / length
    row[TEX_PHASE] = rng.vector([0.0] * NUM_WAVES, [1.0] * NUM_WAVES)
    weight = rng.vector([0.2] * NUM_WAVES, [1.0] * NUM_WAVES)
    row[TEX_WEIGHT] = weight / weight.sum()
    row[TEX_CONTRAST] = rng.uniform(1.0, 5.0)
    cell = rng.log_uniform(*wavelength) * 2
    row[TEX_CHECKER_SIZE] = cell
    row[TEX_CHECKER_WEIGHT] = 0.0 if sky or rng.chance(0.6) else rng.uniform(0.3, 1.0)
    row[TEX_CHECKER_OFFSET] = rng.vector([0.25 * cell] * 3, [0.75 * cell] * 3)
    if sky:
        blue = rng.vector([0.25, 0.45, 0.75], [0.55, 0.7, 1.0])
        palette = torch.stack([blue, rng.vector([0.8] * 3, [1.0] * 3), blue])
    else:
        first = rng.vector([0.05] * 3, [0.95] * 3)
        second = (first + rng.vector([-0.6] * 3, [0.6] * 3)).clamp(0.0, 1.0)
        palette = torch.stack([first, second, rng.vector([0.05] * 3, [0.95] * 3)])
    row[TEX_PALETTE] = palette.flatten()
    row[TEX_EMISSIVE] = float(sky)
    return row


def sample_scene(seed: int, config: SyntheticConfig = SyntheticConfig()) -> SyntheticScene:
    """Draw the scene of ``seed`` (deterministic, CPU, independent of any other seed)."""
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a non-negative 64-bit integer, got {seed}")
    rng = _Sampler(seed)
    times = torch.arange(config.num_frames, dtype=_F64) / config.fps
    environment = "room" if rng.chance(config.room_probability) else "open"
    arena, room, dome_radius = _arena(rng, environment, config)
    path_kind = PATH_KINDS[rng.integer(0, len(PATH_KINDS) - 1)]
    K = _intrinsics(rng, config)
    c2w = _camera_path(rng, path_kind, arena, times)
    shake = rng.chance(config.shake_probability)
    if shake:
        c2w = _shake(rng, c2w, times, arena.scale)
    kinds, scales, rotations, positions, dynamic = _objects(rng, config, environment, arena, room, dome_radius,
                                                            K, c2w, times)
    if environment == "room":
        env_surfaces = [_texture(rng, (0.05, 2.0)) for _ in range(NUM_ENV_SURFACES)]
    else:
        env_surfaces = [_texture(rng, (0.3, 0.3 * dome_radius)),
                        _texture(rng, (0.1 * dome_radius, dome_radius), sky=True)]
        env_surfaces += [torch.zeros(TEX_SIZE, dtype=_F64)] * (NUM_ENV_SURFACES - 2)
    object_surfaces = [_texture(rng, (0.02, max(0.1, 2 * float(s.max())))) for s in scales]
    light_dir = _direction(rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(30, 75)))
    return SyntheticScene(
        seed=seed, environment=environment, path_kind=path_kind, shake=shake, K=K, c2w=c2w, room=room,
        dome_radius=dome_radius, object_kind=kinds, object_scale=scales, object_rotation=rotations,
        object_position=positions, object_dynamic=dynamic, surfaces=torch.stack(env_surfaces + object_surfaces),
        light_dir=light_dir, ambient=rng.uniform(0.25, 0.55),
        light_colour=1.0 - rng.vector([0.0] * 3, [0.15] * 3))
