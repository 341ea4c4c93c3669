"""Per-seed sampling of a synthetic dynamic scene: environment, camera path, objects, textures, light.

Everything here runs on the CPU in float64 with one ``torch.Generator`` per seed, so a scene depends on
its seed alone. World frame of a scene: z up, floor / ground at z = 0, scene centre above the origin.
Cameras follow OpenCV axes (x right, y down, z forward); poses are camera-to-world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sora3r.data.synthetic.augment import sample_photometric
from sora3r.data.synthetic.layout import (
    EMISSIVE_MATERIALS, Layout, Walkers, furnish_open, furnish_room, screen_rects, walkers,
)
from sora3r.data.synthetic.paths import CLASSIC_PATHS, Arena, add_shake, camera_path
from sora3r.data.synthetic.sampler import F64, Sampler, axis_angle_matrix, direction
from sora3r.data.synthetic.textures import (
    BANK, BASE, IMG_BASE, IMG_CONTRAST, IMG_DENSITY, IMG_EMISSIVE, IMG_GAIN, IMG_INDEX, IMG_OFFSET, IMG_ROTATION,
    IMG_SIZE, bank_indices,
)
from sora3r.data.synthetic.raycast import (
    NUM_ENV_SURFACES, NUM_WAVES, PRIMITIVES, TEX_CHECKER_OFFSET, TEX_CHECKER_SIZE, TEX_CHECKER_WEIGHT,
    TEX_CONTRAST, TEX_EMISSIVE, TEX_FREQ, TEX_FREQ_NORM, TEX_PALETTE, TEX_PHASE, TEX_SIZE, TEX_WEIGHT, environment_hit,
)
from sora3r.geometry.projection import focal_from_fov, image_centre, intrinsics_matrix

ENVIRONMENTS = ("room", "open")
TEXTURE_KINDS = ("procedural", "natural")
MOTIONS = ("classic", "handheld")
LIGHTINGS = ("sun", "indoor")
MAX_LAMPS = 2  # point lights of an "indoor" room (unused slots have power 0)

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
        textures: "procedural" (sums of waves and checkers on a 3-colour palette) or "natural" (the image bank of
            `textures`: 1/f noise, planks, tiles, photographs, mapped per material).
        furnish: furniture, wall fittings, rugs and small things in rooms; buildings, walls, steps and posts in open
            scenes, people walking (`layout`); movable objects then keep out of them, some stand on tables and
            shelves.
        motion: "classic" (orbit, walk, pan, track with equal chance) or "handheld" (the hand-held path of casual
            phone footage 60 % of the time, each classic kind 10 %).
        augment: photometric augmentation of the rendered RGB (`augment`: blur, noise, exposure, white balance,
            vignetting, compression); depth, points and cameras are untouched.
        lighting: "sun" (a directional light and ambient light, so a flat surface is evenly lit) or "indoor" (rooms
            also get 1-2 point lights whose light falls off with the square of the distance, and a weaker sun, so
            walls and floors carry the brightness gradients of real interiors; open scenes keep the sun).
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
    textures: str = "procedural"
    furnish: bool = False
    motion: str = "classic"
    augment: bool = False
    lighting: str = "sun"
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
        if self.textures not in TEXTURE_KINDS:
            raise ValueError(f"SyntheticConfig: textures must be one of {TEXTURE_KINDS}, got {self.textures!r}")
        if self.motion not in MOTIONS:
            raise ValueError(f"SyntheticConfig: motion must be one of {MOTIONS}, got {self.motion!r}")
        if self.lighting not in LIGHTINGS:
            raise ValueError(f"SyntheticConfig: lighting must be one of {LIGHTINGS}, got {self.lighting!r}")
        if self.chunk_rays is not None and self.chunk_rays < 1:
            raise ValueError(f"SyntheticConfig: chunk_rays must be positive, got {self.chunk_rays}")


# Named settings of `SyntheticConfig` (besides the clip size), what the training command's ``--synthetic`` picks.
# "realistic": natural-image textures, furnished rooms lit by lamps and structured open scenes, hand-held motion
# (shake on 80 % of clips) and photometric augmentation; fewer free-floating objects (2-6), since furniture fills the
# rooms.
SYNTHETIC_PRESETS: dict[str, dict] = {
    "default": {},
    "realistic": dict(textures="natural", furnish=True, motion="handheld", augment=True, shake_probability=0.8,
                      num_objects=(2, 6), lighting="indoor"),
}


def synthetic_config(preset: str = "default", **fields) -> SyntheticConfig:
    """`SyntheticConfig` of a named preset (`SYNTHETIC_PRESETS`), with ``fields`` (e.g. the clip size) on top."""
    if preset not in SYNTHETIC_PRESETS:
        raise ValueError(f"unknown synthetic preset {preset!r}; expected one of {sorted(SYNTHETIC_PRESETS)}")
    return SyntheticConfig(**{**SYNTHETIC_PRESETS[preset], **fields})


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
        textures: "procedural" or "natural": the kind of the surface rows.
        surfaces: ``(S, TEX_SIZE)`` procedural or ``(S, IMG_SIZE)`` image-texture rows; surfaces 0..5 belong to the
            environment, 6 + i to object i, 6 + M + j to surface j of the static boxes.
        box_lo, box_hi: ``(T, F, 3)`` per-frame corners of the boxes aligned with the world axes (furnished scenes:
            furniture, fittings, buildings, and people walking; F = 0 otherwise); box_surface: ``(F,)`` long surface
            row of each; box_dynamic: ``(F,)`` bool, the moving ones (people); box_rect: ``(T, F, 4)`` long pixel
            rectangles outside which a box cannot be seen (see `layout.screen_rects`).
        photometric: ``(P,)`` parameters of the RGB augmentation (`augment`), or None.
        light_dir: ``(3,)`` unit vector towards the directional light; ambient: ambient fraction in (0, 1);
        light_colour: ``(3,)`` RGB multiplier; sun: strength of the directional light (1 unless lit "indoor");
        lamps: ``(MAX_LAMPS, 4)`` point lights, world position (metres) and power (irradiance at 1 m, in units of
        the directional light's; 0: no lamp).
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
    sun: float
    lamps: torch.Tensor
    textures: str
    box_lo: torch.Tensor
    box_hi: torch.Tensor
    box_surface: torch.Tensor
    box_rect: torch.Tensor
    box_dynamic: torch.Tensor
    photometric: torch.Tensor | None


def _arena(rng: Sampler, environment: str, config: SyntheticConfig) -> tuple[Arena, torch.Tensor, float]:
    """Camera region and environment size: (arena, room half sizes + height, dome radius)."""
    if environment == "room":
        half = torch.tensor([rng.uniform(*config.room_side) / 2, rng.uniform(*config.room_side) / 2], dtype=F64)
        height = rng.uniform(2.4, 3.6)
        m = _CAMERA_WALL_MARGIN
        arena = Arena(eye_lo=torch.tensor([-half[0] + m, -half[1] + m, 1.0], dtype=F64),
                       eye_hi=torch.tensor([half[0] - m, half[1] - m, min(1.9, height - 0.4)], dtype=F64),
                       centre=torch.zeros(3, dtype=F64), scale=float(half.min()))
        return arena, torch.tensor([half[0], half[1], height], dtype=F64), 0.0
    radius = rng.uniform(*config.open_radius)
    reach = 0.15 * radius
    arena = Arena(eye_lo=torch.tensor([-reach, -reach, 1.2], dtype=F64),
                   eye_hi=torch.tensor([reach, reach, 6.0], dtype=F64),
                   centre=torch.zeros(3, dtype=F64), scale=max(4.0, 0.12 * radius))
    return arena, torch.zeros(3, dtype=F64), radius


def _intrinsics(rng: Sampler, config: SyntheticConfig) -> torch.Tensor:
    """``float64 (3, 3)``: a horizontal field of view drawn from ``config.fov_deg``, square pixels, centred."""
    focal = focal_from_fov(config.width, rng.uniform(*config.fov_deg))
    return intrinsics_matrix(focal, focal, *image_centre(config.height, config.width), dtype=F64)


def _inside(position: torch.Tensor, radius: float, environment: str, room: torch.Tensor,
            dome_radius: float, resting: bool) -> bool:
    """Whether an object (bounding radius) stays inside the environment at all frames ``(T, 3)``."""
    if environment == "room":
        inside = (position[:, :2].abs() + radius <= room[:2]).all() and (position[:, 2] + radius <= room[2]).all()
    else:
        inside = (position[:, :2].norm(dim=-1) + radius <= 0.8 * dome_radius).all()
    return bool(inside) and (resting or bool((position[:, 2] - radius >= 0).all()))


def _place_in_view(rng: Sampler, K: torch.Tensor, c2w: torch.Tensor, environment: str, room: torch.Tensor,
                   dome_radius: float) -> torch.Tensor:
    """A world point seen near the middle of the middle frame, in front of the environment."""
    pixel = torch.tensor([rng.uniform(0.2, 0.8) * 2 * K[0, 2], rng.uniform(0.3, 0.8) * 2 * K[1, 2], 1.0], dtype=F64)
    ray = c2w[:3, :3] @ (torch.linalg.inv(K) @ pixel)
    origin = c2w[:3, 3]
    reach = environment_hit(origin[None], ray[None], environment == "room", room, dome_radius)
    return origin + ray * rng.uniform(0.35, 0.85) * float(reach[0])


@dataclass(frozen=True)
class _Stage:
    """What object placement needs to know of a scene: its environment, the camera of the middle frame and, in
    furnished scenes, the layout (objects keep out of its boxes, some stand on its supports)."""

    environment: str
    room: torch.Tensor
    dome_radius: float
    K: torch.Tensor
    view_c2w: torch.Tensor  # (4, 4) camera of the middle frame, which most objects are placed in front of
    size: tuple[float, float]  # range of object sizes (metres)
    speed: tuple[float, float]  # range of object speeds (metres per second)
    layout: Layout | None = None


def _on_support(rng: Sampler, supports: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, float]:
    """A spot on a random support (table top, shelf) for an object of ``scale``: (centre, height of the top)."""
    x0, x1, y0, y1, z = supports[rng.integer(0, len(supports) - 1)].tolist()
    reach = float(scale[:2].norm())
    x = rng.uniform(x0 + reach, x1 - reach) if x1 - x0 > 2 * reach else (x0 + x1) / 2
    y = rng.uniform(y0 + reach, y1 - reach) if y1 - y0 > 2 * reach else (y0 + y1) / 2
    return torch.tensor([x, y, 0.0], dtype=F64), z


def _object_centre(rng: Sampler, stage: _Stage, scale: torch.Tensor, moving: bool, landmark: bool,
                   in_view: bool) -> tuple[torch.Tensor, float]:
    """Where an object stands and the height it rests on: a landmark on the open ground, on a support of the
    layout (half of the still objects of furnished scenes), in view of the middle frame, or anywhere."""
    if landmark:
        angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(0.3, 0.7) * stage.dome_radius
        return torch.tensor([distance * math.cos(angle), distance * math.sin(angle), 0.0], dtype=F64), 0.0
    layout = stage.layout
    if layout is not None and not moving and len(layout.supports) > 0 and rng.chance(0.5):
        return _on_support(rng, layout.supports, scale)
    if in_view or rng.chance(0.6):
        return _place_in_view(rng, stage.K, stage.view_c2w, stage.environment, stage.room, stage.dome_radius), 0.0
    extent = stage.room[:2] if stage.environment == "room" else torch.full((2,), 0.5 * stage.dome_radius, dtype=F64)
    return torch.cat([rng.vector(-extent, extent), torch.zeros(1, dtype=F64)]), 0.0


def _object_motion(rng: Sampler, stage: _Stage, scale: torch.Tensor, base: torch.Tensor, position: torch.Tensor,
                   resting: bool, times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``(T, 3)`` and rotations ``(T, 3, 3)`` of a moving object: a drift through the middle frame plus a
    sinusoidal swing (horizontal for resting objects), and often a spin."""
    mid = len(times) // 2
    velocity = direction(rng.uniform(0, 2 * math.pi), 0.0) * rng.uniform(*stage.speed)
    swing = rng.vector([0.0] * 3, [0.3] * 3) * scale.max()
    if resting:
        swing[2] = 0.0
    phase = rng.vector([0.0] * 3, [2 * math.pi] * 3)
    frequency = rng.vector([0.2] * 3, [1.0] * 3)
    position = position + velocity * (times - times[mid])[:, None] \
        + swing * torch.sin(2 * math.pi * frequency * times[:, None] + phase)
    rotation = base.expand(len(times), 3, 3)
    if rng.chance(0.7):
        axis = torch.tensor([0.0, 0.0, 1.0], dtype=F64) if resting else rng.unit_vector()
        spin = rng.sign() * rng.uniform(0.3, 2.5)
        rotation = axis_angle_matrix(axis, spin * times) @ base
    return position, rotation


def _draw_object(rng: Sampler, stage: _Stage, kind: str, moving: bool, landmark: bool, in_view: bool,
                 times: torch.Tensor):
    """One attempt at an object: ``(scale (3,), bounding radius, resting, positions (T, 3), rotations (T, 3, 3))``."""
    if landmark:
        scale = rng.vector([1.5, 1.5, 2.0], [6.0, 6.0, 12.0])
    else:
        scale = rng.log_uniform(*stage.size) * rng.vector([0.6] * 3, [1.5] * 3)
    if kind in ("sphere", "cylinder"):
        scale[1] = scale[0]  # round cross-section for most; ellipsoids keep distinct z
    radius = float(scale.norm())
    centre, floor = _object_centre(rng, stage, scale, moving, landmark, in_view)
    resting = not moving or rng.chance(0.5)
    base = axis_angle_matrix(torch.tensor([0.0, 0.0, 1.0], dtype=F64), rng.uniform(0, 2 * math.pi))
    if resting:
        centre[2] = floor + scale[2]
    else:
        centre[2] = max(float(centre[2]), radius)
        base = axis_angle_matrix(rng.unit_vector(), rng.uniform(0, math.pi)) @ base
    position = centre.expand(len(times), 3).clone()
    if moving:
        position, rotation = _object_motion(rng, stage, scale, base, position, resting, times)
    else:
        rotation = base.expand(len(times), 3, 3)
    return scale, radius, resting, position, rotation


def _clear_of(layout: Layout, position: torch.Tensor, scale: torch.Tensor, resting: bool) -> bool:
    """Whether an object's bounds (upright extents when resting, its bounding sphere otherwise) stay out of every
    box of the layout at every frame (touching is allowed: things stand on tables)."""
    radius = float(scale.norm())
    reach = torch.tensor([float(scale[:2].norm())] * 2 + [float(scale[2])], dtype=F64) if resting else \
        torch.full((3,), radius, dtype=F64)
    lo, hi = position[:, None] - reach, position[:, None] + reach  # (T, 1, 3) against (F, 3)
    overlap = ((lo < layout.hi - 1e-6) & (hi > layout.lo + 1e-6)).all(dim=-1)
    return not bool(overlap.any())


def _objects(rng: Sampler, config: SyntheticConfig, environment: str, room: torch.Tensor, dome_radius: float,
             K: torch.Tensor, c2w: torch.Tensor, times: torch.Tensor, layout: Layout | None = None):
    """Objects as (kinds, scales (M,3), rotations (T,M,3,3), positions (T,M,3), dynamic (M,)).

    Each object gets up to 30 draws to find a placement clear of the camera path (by 25 cm), inside the
    environment and, with a ``layout`` (furnished scenes), out of its boxes; one that finds none is left out.
    Furnished open scenes get no landmarks (the layout has buildings).
    """
    count = rng.integer(*config.num_objects)
    num_dynamic = rng.integer(1, count - 1)
    eyes = c2w[:, :3, 3]
    room_scene = environment == "room"
    stage = _Stage(environment, room, dome_radius, K, c2w[len(times) // 2],
                   size=(0.08, 0.45) if room_scene else (0.3, 2.5), speed=(0.1, 0.6) if room_scene else (0.5, 3.0),
                   layout=layout)
    kinds, scales, rotations, positions, dynamic = [], [], [], [], []
    landmarks = rng.integer(0, 3) if environment == "open" and layout is None else 0
    for index in range(count + landmarks):
        moving = index < num_dynamic
        landmark = index >= count
        kind = PRIMITIVES[rng.integer(0, 2)] if not landmark else ("box", "cylinder")[rng.integer(0, 1)]
        for _attempt in range(30):
            scale, radius, resting, position, rotation = _draw_object(rng, stage, kind, moving, landmark,
                                                                      moving and index == 0, times)
            clear = ((position - eyes).norm(dim=-1) > radius + 0.25).all()
            if bool(clear) and _inside(position, radius if not resting else float(scale[:2].norm()),
                                       environment, room, dome_radius, resting) and \
                    (layout is None or _clear_of(layout, position, scale, resting)):
                kinds.append(kind)
                scales.append(scale)
                rotations.append(rotation)
                positions.append(position)
                dynamic.append(moving)
                break
    return (tuple(kinds), torch.stack(scales) if scales else torch.zeros(0, 3, dtype=F64),
            torch.stack(rotations, dim=1) if rotations else torch.zeros(len(times), 0, 3, 3, dtype=F64),
            torch.stack(positions, dim=1) if positions else torch.zeros(len(times), 0, 3, dtype=F64),
            torch.tensor(dynamic, dtype=torch.bool))


def _texture(rng: Sampler, wavelength: tuple[float, float], sky: bool = False) -> torch.Tensor:
    """One surface's texture row: waves at several scales, optional checkers, a 3-colour palette."""
    row = torch.zeros(TEX_SIZE, dtype=F64)
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


# Image textures per material: (texture kinds or photo names of `textures.BANK`, metres one texture spans,
# contrast range, colour scheme). A grey texture maps to two colours of the scheme, a colour one gets a tint.
_MATERIALS = {
    "wall": (("noise", "stripes", "tiles", "brick"), (0.6, 3.0), (0.05, 1.0), "light"),
    "floor": (("planks", "tiles", "grain", "noise", "gravel"), (0.8, 3.0), (0.5, 1.5), "wood"),
    "ceiling": (("noise",), (0.8, 3.0), (0.05, 0.6), "light"),
    "wood": (("grain", "planks"), (0.3, 1.5), (0.6, 1.5), "wood"),
    "fabric": (("noise", "grain", "stripes"), (0.15, 0.8), (0.5, 1.5), "any"),
    "paint": (("noise",), (0.3, 2.0), (0.2, 0.8), "any"),
    "metal": (("noise", "grain"), (0.2, 1.0), (0.5, 1.2), "grey"),
    "book": (("photo", "stripes", "noise"), (0.1, 0.5), (0.8, 1.5), "any"),
    "clutter": (("photo", "noise", "tiles", "stripes"), (0.1, 0.6), (0.6, 1.5), "any"),
    "picture": (("photo",), (0.4, 1.2), (0.9, 1.2), "any"),
    "window": (("cloud", "rocket", "grass", "gravel", "astronaut", "coffee"), (0.8, 3.0), (0.6, 1.2), "bright"),
    "lamp": (("noise",), (0.3, 1.0), (0.1, 0.3), "bright"),
    "screen": (("photo", "noise"), (0.4, 1.5), (0.5, 1.0), "dark"),
    "rug": (("noise", "stripes", "tiles", "photo"), (0.5, 2.0), (0.6, 1.5), "any"),
    "building": (("brick", "tiles", "stripes", "noise", "planks"), (3.0, 15.0), (0.6, 1.5), "any"),
    "stone": (("gravel", "noise", "brick", "tiles"), (0.8, 4.0), (0.6, 1.5), "grey"),
    "ground": (("grass", "gravel", "noise", "tiles", "planks", "brick"), (1.5, 12.0), (0.6, 1.6), "earth"),
    "object": (("noise", "grain", "planks", "tiles", "stripes", "photo"), (0.1, 1.0), (0.6, 1.6), "any"),
    "skin": (("noise",), (0.1, 0.5), (0.1, 0.4), "skin"),
}
_MATERIAL_BANK = {name: tuple(i for i, spec in enumerate(BANK) if spec.kind in picks or spec.name in picks)
                  for name, (picks, *_) in _MATERIALS.items()}


def _scheme_colour(rng: Sampler, scheme: str) -> torch.Tensor:
    """A surface colour ``(3,)`` in [0, 1] of a colour scheme."""
    if scheme == "light":
        return (rng.uniform(0.6, 0.95) + rng.vector([-0.08] * 3, [0.08] * 3)).clamp(0.0, 1.0)
    if scheme in ("wood", "earth"):
        red = rng.uniform(0.3, 0.8) if scheme == "wood" else rng.uniform(0.25, 0.6)
        return torch.tensor([red, red * rng.uniform(0.6, 0.85), red * rng.uniform(0.3, 0.7)], dtype=F64)
    if scheme == "grey":
        return (rng.uniform(0.25, 0.8) + rng.vector([-0.03] * 3, [0.03] * 3)).clamp(0.0, 1.0)
    if scheme == "skin":
        tone = rng.uniform(0.25, 0.95)
        return torch.tensor([tone, tone * rng.uniform(0.7, 0.8), tone * rng.uniform(0.55, 0.7)], dtype=F64)
    if scheme == "dark":
        return rng.vector([0.02] * 3, [0.12] * 3)
    if scheme == "bright":
        return rng.vector([0.85] * 3, [1.0] * 3)
    grey = rng.uniform(0.15, 0.85)  # "any": a hue mixed into grey (strong colours are rarer than muted ones)
    return (grey + rng.uniform(0.1, 1.0) * (rng.vector([0.05] * 3, [0.95] * 3) - grey)).clamp(0.0, 1.0)


def _image_texture(rng: Sampler, material: str, span_scale: float = 1.0, emissive: bool = False) -> torch.Tensor:
    """An image-texture row (`textures.IMG_SIZE`) of ``material``; ``span_scale`` stretches its metre range."""
    picks, span, contrast, scheme = _MATERIALS[material]
    choices = _MATERIAL_BANK[material]
    index = choices[rng.integer(0, len(choices) - 1)]
    density = BASE / (rng.log_uniform(*span) * span_scale)
    angle = rng.uniform(0, 2 * math.pi) if rng.chance(0.3) else rng.integer(0, 3) * math.pi / 2
    offset = rng.vector([0.0, 0.0], [2.0 * BASE, 2.0 * BASE]).tolist()
    stretch = rng.uniform(*contrast)
    colour = _scheme_colour(rng, scheme)
    if BANK[index].colour:  # keep the texture's own colours, tinted
        base = [0.0] * 3
        gain = (rng.vector([0.75] * 3, [1.15] * 3) * (0.5 + 0.5 * colour.mean())).tolist()
    else:
        dark = colour * rng.uniform(0.15, 0.7) if rng.chance(0.8) else _scheme_colour(rng, scheme)
        base, gain = dark.tolist(), (colour - dark).tolist()
    row = [0.0] * IMG_SIZE  # a list, filled by the layout's names, then one tensor (cheaper than tensor writes)
    row[IMG_INDEX], row[IMG_DENSITY], row[IMG_CONTRAST], row[IMG_EMISSIVE] = index, density, stretch, float(emissive)
    row[IMG_ROTATION], row[IMG_OFFSET] = [math.cos(angle), math.sin(angle)], offset
    row[IMG_BASE], row[IMG_GAIN] = base, gain
    return torch.tensor(row, dtype=F64)


def _sky_texture(rng: Sampler, dome_radius: float) -> torch.Tensor:
    """Clouds on blue: an emissive row spanning a fraction of the dome."""
    choices = bank_indices("cloud")
    row = torch.zeros(IMG_SIZE, dtype=F64)
    row[IMG_INDEX] = choices[rng.integer(0, len(choices) - 1)]
    row[IMG_DENSITY] = BASE / (rng.uniform(0.2, 1.0) * dome_radius)
    row[IMG_ROTATION] = torch.tensor([1.0, 0.0], dtype=F64)
    row[IMG_OFFSET] = rng.vector([0.0, 0.0], [2.0 * BASE, 2.0 * BASE])
    row[IMG_CONTRAST] = rng.uniform(0.8, 2.0)
    blue = rng.vector([0.3, 0.5, 0.75], [0.6, 0.75, 1.0])
    row[IMG_BASE] = blue
    row[IMG_GAIN] = rng.vector([0.85] * 3, [1.0] * 3) - blue
    row[IMG_EMISSIVE] = 1.0
    return row


def _natural_surfaces(rng: Sampler, environment: str, dome_radius: float, scales: torch.Tensor,
                      layout: Layout | None, people: tuple[str, ...]) -> torch.Tensor:
    """Image-texture rows: environment (walls often share one paint), objects, the layout's surfaces, then the
    people's (``people``: their materials)."""
    if environment == "room":
        wall = _image_texture(rng, "wall")
        walls = [wall if rng.chance(0.7) else _image_texture(rng, "wall") for _ in range(4)]
        env = walls + [_image_texture(rng, "floor"), _image_texture(rng, "ceiling")]
    else:
        env = [_image_texture(rng, "ground"), _sky_texture(rng, dome_radius)]
        env += [torch.zeros(IMG_SIZE, dtype=F64)] * (NUM_ENV_SURFACES - 2)
    objects = [_image_texture(rng, "object", span_scale=max(0.2, 2 * float(s.max()))) for s in scales]
    fittings = []
    for index, material in enumerate(layout.materials if layout else ()):
        row = _image_texture(rng, material, emissive=material in EMISSIVE_MATERIALS)
        if material in _FITTED:
            _fit_to_panel(row, *layout.surface_bounds(index))
        fittings.append(row)
    fittings += [_image_texture(rng, material) for material in people]
    return torch.stack(env + objects + fittings)


_FITTED = ("picture", "window", "screen")  # one copy of the image across the panel, like a print or a view


def _fit_to_panel(row: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> None:
    """Place a row's texture once across a thin panel ``[lo, hi]`` (its longer side spans the texture, centred,
    upright), in the texture coordinates the renderer uses on that face (see `raycast._image_colour`)."""
    extent = hi - lo
    axis = int(extent.argmin())  # the panel's normal
    u_axis = 1 if axis == 0 else 0
    v_axis = 1 if axis == 2 else 2
    v_sign = 1.0 if axis == 2 else -1.0  # v = -z on vertical faces
    density = BASE / float(max(extent[u_axis], extent[v_axis]))
    v_low = float(lo[v_axis] if v_sign > 0 else -hi[v_axis])
    row[IMG_DENSITY] = density
    row[IMG_ROTATION] = torch.tensor([1.0, 0.0], dtype=F64)
    row[IMG_OFFSET] = torch.tensor([(BASE - density * float(extent[u_axis])) / 2 - density * float(lo[u_axis]),
                                    (BASE - density * float(extent[v_axis])) / 2 - density * v_low], dtype=F64)


def _path_kind(rng: Sampler, config: SyntheticConfig) -> str:
    if config.motion == "handheld" and rng.chance(0.6):
        return "handheld"
    return CLASSIC_PATHS[rng.integer(0, len(CLASSIC_PATHS) - 1)]


def _procedural_surfaces(rng: Sampler, environment: str, dome_radius: float, scales: torch.Tensor,
                         layout: Layout | None, people: tuple[str, ...]) -> torch.Tensor:
    """Procedural texture rows: environment, objects, then the layout's and the people's surfaces."""
    if environment == "room":
        env_surfaces = [_texture(rng, (0.05, 2.0)) for _ in range(NUM_ENV_SURFACES)]
    else:
        env_surfaces = [_texture(rng, (0.3, 0.3 * dome_radius)),
                        _texture(rng, (0.1 * dome_radius, dome_radius), sky=True)]
        env_surfaces += [torch.zeros(TEX_SIZE, dtype=F64)] * (NUM_ENV_SURFACES - 2)
    object_surfaces = [_texture(rng, (0.02, max(0.1, 2 * float(s.max())))) for s in scales]
    fittings = []
    for material in (layout.materials if layout else ()) + people:
        row = _texture(rng, (0.02, 1.0))
        row[TEX_EMISSIVE] = float(material in EMISSIVE_MATERIALS)
        fittings.append(row)
    return torch.stack(env_surfaces + object_surfaces + fittings)


def _people(rng: Sampler, environment: str, room: torch.Tensor, dome_radius: float, c2w: torch.Tensor,
            times: torch.Tensor, layout: Layout, positions: torch.Tensor, scales: torch.Tensor) -> Walkers:
    """0-2 people walking in a room, 0-4 in an open scene (see `layout.walkers`)."""
    if environment == "room":
        bound_lo, bound_hi = torch.tensor([-room[0], -room[1], 0.0], dtype=F64), room.clone()
        count, distance = rng.integer(0, 2), (1.0, 6.0)
    else:
        reach = 0.5 * dome_radius
        bound_lo = torch.tensor([-reach, -reach, 0.0], dtype=F64)
        bound_hi = torch.tensor([reach, reach, 10.0], dtype=F64)
        count, distance = rng.integer(0, 4), (2.0, 15.0)
    return walkers(rng, times, bound_lo, bound_hi, c2w, layout, (positions, scales.norm(dim=-1)), count, distance)


def _indoor_light(rng: Sampler, room: torch.Tensor) -> tuple[float, float, torch.Tensor]:
    """Light of an "indoor" room: (ambient, sun, lamps). A ceiling lamp, and half the time a second lamp lower
    down (a floor lamp, or the light from a window), each at least 0.3 m from the walls; a lamp's power is set so
    that its irradiance at the room's height from it is 0.4-1.5 (first) or 0.2-1.0 (second) times the sun's."""
    lamps = torch.zeros(MAX_LAMPS, 4, dtype=F64)
    inside = room[:2] - 0.3
    height = float(room[2])
    lamps[0, :2] = rng.vector(-inside, inside)
    lamps[0, 2] = height - rng.uniform(0.05, 0.6)
    lamps[0, 3] = rng.uniform(0.4, 1.5) * height ** 2
    if rng.chance(0.5):
        lamps[1, :2] = rng.vector(-inside, inside)
        lamps[1, 2] = rng.uniform(0.5, height - 0.3)
        lamps[1, 3] = rng.uniform(0.2, 1.0) * height ** 2
    return rng.uniform(0.15, 0.45), rng.uniform(0.0, 0.7), lamps


def _boxes(layout: Layout | None, people: Walkers | None, frames: int):
    """The scene's boxes: per-frame ``lo, hi (T, F, 3)``, surface offsets ``(F,)`` past the objects' rows, and
    which move ``(F,)``: the layout's (static) first, then the people's."""
    lo = [layout.lo.expand(frames, -1, -1)] if layout else [torch.zeros(frames, 0, 3, dtype=F64)]
    hi = [layout.hi.expand(frames, -1, -1)] if layout else [torch.zeros(frames, 0, 3, dtype=F64)]
    surface = [layout.surface] if layout else [torch.zeros(0, dtype=torch.long)]
    if people is not None:
        lo.append(people.lo)
        hi.append(people.hi)
        surface.append(len(layout.materials) + people.surface)
    moving = torch.cat([torch.zeros(len(surface[0]), dtype=torch.bool),
                        torch.ones(sum(len(s) for s in surface[1:]), dtype=torch.bool)])
    return torch.cat(lo, dim=1), torch.cat(hi, dim=1), torch.cat(surface), moving


def sample_scene(seed: int, config: SyntheticConfig = SyntheticConfig()) -> SyntheticScene:
    """Draw the scene of ``seed`` (deterministic, CPU, independent of any other seed)."""
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a non-negative 64-bit integer, got {seed}")
    rng = Sampler(seed)
    times = torch.arange(config.num_frames, dtype=F64) / config.fps
    environment = "room" if rng.chance(config.room_probability) else "open"
    arena, room, dome_radius = _arena(rng, environment, config)
    path_kind = _path_kind(rng, config)
    K = _intrinsics(rng, config)
    c2w = camera_path(rng, path_kind, arena, times)
    shake = rng.chance(config.shake_probability)
    if shake:
        c2w = add_shake(rng, c2w, times, arena.scale)
    layout = people = None
    if config.furnish:
        eyes = c2w[:, :3, 3]
        layout = furnish_room(rng, room, eyes) if environment == "room" else furnish_open(rng, dome_radius, eyes)
    kinds, scales, rotations, positions, dynamic = _objects(rng, config, environment, room, dome_radius, K, c2w,
                                                            times, layout)
    if config.furnish:
        people = _people(rng, environment, room, dome_radius, c2w, times, layout, positions, scales)
    make_surfaces = _natural_surfaces if config.textures == "natural" else _procedural_surfaces
    surfaces = make_surfaces(rng, environment, dome_radius, scales, layout, people.materials if people else ())
    light_dir = direction(rng.uniform(0, 2 * math.pi), math.radians(rng.uniform(30, 75)))
    ambient, light_colour = rng.uniform(0.25, 0.55), 1.0 - rng.vector([0.0] * 3, [0.15] * 3)
    sun, lamps = 1.0, torch.zeros(MAX_LAMPS, 4, dtype=F64)
    if config.lighting == "indoor" and environment == "room":
        ambient, sun, lamps = _indoor_light(rng, room)
    boxes = _boxes(layout, people, len(times))
    return SyntheticScene(
        seed=seed, environment=environment, path_kind=path_kind, shake=shake, K=K, c2w=c2w, room=room,
        dome_radius=dome_radius, object_kind=kinds, object_scale=scales, object_rotation=rotations,
        object_position=positions, object_dynamic=dynamic, surfaces=surfaces, light_dir=light_dir, ambient=ambient,
        light_colour=light_colour, sun=sun, lamps=lamps, textures=config.textures, box_lo=boxes[0], box_hi=boxes[1],
        box_surface=NUM_ENV_SURFACES + len(kinds) + boxes[2], box_dynamic=boxes[3],
        box_rect=screen_rects(boxes[0], boxes[1], K, c2w, config.height, config.width),
        photometric=sample_photometric(seed) if config.augment else None)
