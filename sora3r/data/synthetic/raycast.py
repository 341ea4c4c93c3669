"""Batched analytic ray casting and shading of sampled scenes, in plain torch (CPU or CUDA).

Rays go through pixel centres at integer pixel coordinates with direction ``R @ K^-1 [u, v, 1]``, so the
ray parameter of a hit *is* its z-depth in that camera. Every object is a unit primitive (cube
[-1, 1]^3, unit sphere, unit cylinder of axis z and |z| <= 1) in its own frame, scaled per axis, rotated
and moved per frame; rays are moved into that frame instead of moving geometry. Static boxes aligned with the
world axes (furnished scenes) are tested only on the pixels inside each box's projected rectangle, as a list of
(ray, box) pairs whose nearest hit per ray is taken with a scatter-min.

Only +, -, *, /, sqrt, floor, frexp, min/max, comparisons, gathers and scatter-min run per ray (no sin/exp, no
matmul or sum reductions), each as its own elementwise op: those are exactly rounded whichever vectorised or scalar
path torch takes, so a clip renders bit-identically alone or inside any batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sora3r.data.synthetic.textures import IMG_EMISSIVE, image_albedo, texture_bank

# Layout of one surface's texture row (written by `scene._texture`, read by `_albedo`).
NUM_WAVES = 4
TEX_FREQ = slice(0, 3 * NUM_WAVES)
TEX_PHASE = slice(TEX_FREQ.stop, TEX_FREQ.stop + NUM_WAVES)
TEX_WEIGHT = slice(TEX_PHASE.stop, TEX_PHASE.stop + NUM_WAVES)
TEX_CONTRAST = TEX_WEIGHT.stop
TEX_CHECKER_SIZE = TEX_CONTRAST + 1
TEX_CHECKER_WEIGHT = TEX_CHECKER_SIZE + 1
TEX_CHECKER_OFFSET = slice(TEX_CHECKER_WEIGHT + 1, TEX_CHECKER_WEIGHT + 4)
TEX_PALETTE = slice(TEX_CHECKER_OFFSET.stop, TEX_CHECKER_OFFSET.stop + 9)
TEX_EMISSIVE = TEX_PALETTE.stop
TEX_FREQ_NORM = slice(TEX_EMISSIVE + 1, TEX_EMISSIVE + 1 + NUM_WAVES)  # |frequency| of each wave
TEX_SIZE = TEX_FREQ_NORM.stop

PRIMITIVES = ("box", "sphere", "cylinder")
NUM_ENV_SURFACES = 6  # room: x-, x+, y-, y+, floor, ceiling; open: ground, backdrop (4 unused)
_INF = float("inf")


Vec = tuple  # three same-shaped tensors (x, y, z): components kept apart so every op runs contiguous


def _dot(a: Vec, b: Vec) -> torch.Tensor:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _matvec(rows, v: Vec) -> Vec:
    """``M @ v`` for a 3x3 matrix given as ``rows[i][j]`` tensors (broadcast against ``v``)."""
    return tuple(rows[i][0] * v[0] + rows[i][1] * v[1] + rows[i][2] * v[2] for i in range(3))


def _entries(matrix: torch.Tensor, transpose: bool = False):
    """``(..., 3, 3)`` tensor -> nested 3x3 lists of ``(...)`` tensors (optionally transposed)."""
    m = matrix.transpose(-1, -2) if transpose else matrix
    return [[m[..., i, j] for j in range(3)] for i in range(3)]


def _components(x: torch.Tensor) -> Vec:
    """``(..., 3)`` -> three contiguous ``(...)`` tensors."""
    return tuple(x.movedim(-1, 0).contiguous().unbind(0))


def _normalize(v: Vec) -> Vec:
    norm = torch.sqrt(_dot(v, v))
    return tuple(c / norm for c in v)


def _nonzero(d: torch.Tensor) -> torch.Tensor:
    """Direction components with exact zeros nudged, so slab divisions stay finite and signed."""
    return torch.where(d == 0, torch.full_like(d, 1e-30), d)


def _first_axis(values: Vec, target: torch.Tensor) -> torch.Tensor:
    """Index (0, 1, 2) of the first component equal to ``target``."""
    return torch.where(values[0] == target, 0, torch.where(values[1] == target, 1, 2))


# --- environment (seen from inside) -------------------------------------------------------------------------

def room_exit(origin: Vec, direction: Vec, room: Vec):
    """Where rays leave the room box ``[-hx, hx] x [-hy, hy] x [0, h]`` (``room = (hx, hy, h)``).

    Returns ``(t, wall)`` with wall = 2 * axis + (ray heads along +axis), a long tensor.
    """
    lower = (-room[0], -room[1], torch.zeros_like(room[2]))
    t_axis = tuple(
        torch.where(d != 0, (torch.where(d > 0, hi, lo) - o) / _nonzero(d), _INF)
        for o, d, lo, hi in zip(origin, direction, lower, room))
    t = torch.minimum(torch.minimum(t_axis[0], t_axis[1]), t_axis[2])
    axis = _first_axis(t_axis, t)
    positive = torch.where(axis == 0, direction[0] > 0, torch.where(axis == 1, direction[1] > 0, direction[2] > 0))
    return t, 2 * axis + positive.long()


def open_hit(origin: Vec, direction: Vec, radius: torch.Tensor):
    """First hit of rays with the ground z = 0 or the backdrop sphere of ``radius`` around the origin.

    Returns ``(t, on_ground bool)``. Origins must be inside the sphere and above the ground.
    """
    a, b = _dot(direction, direction), _dot(origin, direction)
    c = _dot(origin, origin) - radius * radius
    root = torch.sqrt(b * b - a * c)
    # far root of a t^2 + 2 b t + c, in the form without cancellation for either sign of b
    t_dome = torch.where(b > 0, -c / (b + root), (root - b) / a)
    down = direction[2] < 0
    t_ground = torch.where(down, -origin[2] / torch.where(down, direction[2], -1.0), _INF)
    return torch.minimum(t_dome, t_ground), t_ground < t_dome


def environment_hit(origin: torch.Tensor, direction: torch.Tensor, is_room: bool, room: torch.Tensor,
                    dome_radius: float) -> torch.Tensor:
    """Depth along rays ``(N, 3)`` to the environment of one scene (room box or ground + backdrop)."""
    o, d = _components(origin), _components(direction)
    if is_room:
        return room_exit(o, d, tuple(torch.as_tensor(room, dtype=origin.dtype).unbind(0)))[0]
    return open_hit(o, d, torch.as_tensor(dome_radius, dtype=origin.dtype))[0]


# --- unit primitives (rays in the primitive's scaled frame) -----------------------------------------------

def _hit_box(o: Vec, d: Vec) -> torch.Tensor:
    """Entry ``t`` of rays into the cube [-1, 1]^3 (slab test); inf on a miss.

    A zero direction component gives infinite slab bounds (or NaN exactly on a face plane, which
    compares false: a miss on that measure-zero set).
    """
    near, far = [], []
    for o_i, d_i in zip(o, d):
        inv = 1.0 / d_i
        t1, t2 = (-1.0 - o_i) * inv, (1.0 - o_i) * inv
        near.append(torch.minimum(t1, t2))
        far.append(torch.maximum(t1, t2))
    t_near = torch.maximum(torch.maximum(near[0], near[1]), near[2])
    t_far = torch.minimum(torch.minimum(far[0], far[1]), far[2])
    return torch.where((t_near <= t_far) & (t_near > 0), t_near, _INF)


def _hit_sphere(o: Vec, d: Vec) -> torch.Tensor:
    """Near ``t`` of rays with the unit sphere; inf on a miss."""
    a, b, c = _dot(d, d), _dot(o, d), _dot(o, o) - 1.0
    disc = b * b - a * c
    t = (-b - torch.sqrt(disc.clamp(min=0))) / a
    return torch.where((disc >= 0) & (t > 0), t, _INF)


def _hit_cylinder(o: Vec, d: Vec) -> torch.Tensor:
    """Near ``t`` of rays with the capped unit cylinder x^2 + y^2 <= 1, |z| <= 1; inf on a miss."""
    a = d[0] * d[0] + d[1] * d[1]
    b = o[0] * d[0] + o[1] * d[1]
    c = o[0] * o[0] + o[1] * o[1] - 1.0
    disc = b * b - a * c
    t_side = (-b - torch.sqrt(disc.clamp(min=0))) / torch.where(a > 0, a, 1.0)
    z_side = o[2] + t_side * d[2]
    side = (a > 0) & (disc >= 0) & (t_side > 0) & (z_side.abs() <= 1.0)
    dz = _nonzero(d[2])
    t_cap = (torch.where(dz > 0, -1.0, 1.0) - o[2]) / dz
    x_cap, y_cap = o[0] + t_cap * d[0], o[1] + t_cap * d[1]
    cap = (t_cap > 0) & (x_cap * x_cap + y_cap * y_cap <= 1.0)
    return torch.minimum(torch.where(side, t_side, _INF), torch.where(cap, t_cap, _INF))


def _unit_normal(kind: str, x: Vec) -> Vec:
    """Outward normal (unnormalised) of a unit primitive at surface points ``x``."""
    if kind == "sphere":
        return x
    zero = torch.zeros_like(x[0])
    if kind == "box":
        size = tuple(c.abs() for c in x)
        axis = _first_axis(size, torch.maximum(torch.maximum(size[0], size[1]), size[2]))
        return tuple(torch.where(axis == i, torch.sign(x[i]), zero) for i in range(3))
    radial = torch.sqrt(x[0] * x[0] + x[1] * x[1])
    cap = x[2].abs() >= radial
    return (torch.where(cap, zero, x[0]), torch.where(cap, zero, x[1]), torch.where(cap, torch.sign(x[2]), zero))


_UNIT_HIT = {"box": _hit_box, "sphere": _hit_sphere, "cylinder": _hit_cylinder}


# --- batched scene tensors ---------------------------------------------------------------------------------

@dataclass
class ObjectGroup:
    """Objects of one primitive kind of B clips, padded to ``M`` slots (``mask`` marks real ones).

    rotation ``(B, T, M, 3, 3)`` object-to-world, position ``(B, T, M, 3)``, scale ``(B, M, 3)``,
    mask ``(B, M)`` bool, surface ``(B, M)`` long index into the clip's surface rows.
    """

    rotation: torch.Tensor
    position: torch.Tensor
    scale: torch.Tensor
    mask: torch.Tensor
    surface: torch.Tensor


@dataclass
class BoxGroup:
    """Boxes aligned with the world axes (furniture, fittings, buildings, people) of B clips, padded to ``F`` slots.

    lo, hi ``(B, T, F, 3)`` corners per frame (people walk); surface ``(B, F)`` long; rect ``(B, T, F, 4)`` long: per
    frame the inclusive pixel rectangle ``(u0, u1, v0, v1)`` outside which the box cannot be seen (empty when
    ``u1 < u0``, as for padding). Only the rays inside a box's rectangle are tested against it.
    """

    lo: torch.Tensor
    hi: torch.Tensor
    surface: torch.Tensor
    rect: torch.Tensor


@dataclass
class SceneBatch:
    """Float32 tensors of B scenes on one device (see `scene.SyntheticScene` for meanings)."""

    K: torch.Tensor  # (B, 3, 3)
    c2w: torch.Tensor  # (B, T, 4, 4)
    is_room: torch.Tensor  # (B,) bool
    room: torch.Tensor  # (B, 3)
    dome_radius: torch.Tensor  # (B,)
    groups: dict[str, ObjectGroup]
    surfaces: torch.Tensor  # (B, S, TEX_SIZE) procedural rows, or (B, S, IMG_SIZE) image-texture rows
    surface_dynamic: torch.Tensor  # (B, S) bool
    light_dir: torch.Tensor  # (B, 3)
    ambient: torch.Tensor  # (B,)
    light_colour: torch.Tensor  # (B, 3)
    sun: torch.Tensor  # (B,)
    lamps: torch.Tensor | None  # (B, L, 4) point lights (position, power); None when no scene has one
    natural: bool = False  # surfaces are image-texture rows (`textures.image_albedo`)
    boxes: BoxGroup | None = None


def _object_groups(scenes, num_frames: int, f32: dict) -> dict[str, ObjectGroup]:
    groups = {}
    for kind in PRIMITIVES:
        members = [[i for i, k in enumerate(s.object_kind) if k == kind] for s in scenes]
        slots = max(len(m) for m in members)
        if slots == 0:
            continue
        rotation = torch.eye(3, dtype=torch.float64).repeat(len(scenes), num_frames, slots, 1, 1)
        position = torch.zeros(len(scenes), num_frames, slots, 3, dtype=torch.float64)
        scale = torch.ones(len(scenes), slots, 3, dtype=torch.float64)
        mask = torch.zeros(len(scenes), slots, dtype=torch.bool)
        surface = torch.zeros(len(scenes), slots, dtype=torch.long)
        for b, (scene, index) in enumerate(zip(scenes, members)):
            n = len(index)
            rotation[b, :, :n] = scene.object_rotation[:, index]
            position[b, :, :n] = scene.object_position[:, index]
            scale[b, :n] = scene.object_scale[index]
            mask[b, :n] = True
            surface[b, :n] = NUM_ENV_SURFACES + torch.tensor(index, dtype=torch.long)
        groups[kind] = ObjectGroup(rotation.to(**f32), position.to(**f32), scale.to(**f32), mask.to(f32["device"]),
                                   surface.to(f32["device"]))
    return groups


def _box_group(scenes, num_frames: int, f32: dict) -> BoxGroup | None:
    slots = max(s.box_lo.shape[1] for s in scenes)
    if slots == 0:
        return None
    lo = torch.zeros(len(scenes), num_frames, slots, 3, dtype=torch.float64)
    hi = torch.zeros(len(scenes), num_frames, slots, 3, dtype=torch.float64)
    surface = torch.zeros(len(scenes), slots, dtype=torch.long)
    rect = torch.tensor([0, -1, 0, -1]).repeat(len(scenes), num_frames, slots, 1)
    for b, scene in enumerate(scenes):
        n = scene.box_lo.shape[1]
        lo[b, :, :n], hi[b, :, :n], surface[b, :n], rect[b, :, :n] = scene.box_lo, scene.box_hi, \
            scene.box_surface, scene.box_rect
    device = f32["device"]
    return BoxGroup(lo.to(**f32), hi.to(**f32), surface.to(device), rect.to(device))


def stack_scenes(scenes, device) -> SceneBatch:
    """Pad and stack sampled scenes into one `SceneBatch` (float32 on ``device``)."""
    f32 = dict(dtype=torch.float32, device=device)
    num_frames = scenes[0].c2w.shape[0]
    num_surfaces = max(s.surfaces.shape[0] for s in scenes)
    if len({s.textures for s in scenes}) != 1:
        raise ValueError("stack_scenes: scenes with procedural and image textures cannot share a batch")
    surfaces = torch.zeros(len(scenes), num_surfaces, scenes[0].surfaces.shape[1], dtype=torch.float64)
    dynamic = torch.zeros(len(scenes), num_surfaces, dtype=torch.bool)
    for b, scene in enumerate(scenes):
        surfaces[b, :scene.surfaces.shape[0]] = scene.surfaces
        dynamic[b, NUM_ENV_SURFACES:NUM_ENV_SURFACES + len(scene.object_kind)] = scene.object_dynamic
        dynamic[b, scene.box_surface[scene.box_dynamic]] = True
    lamps = torch.stack([s.lamps for s in scenes])
    return SceneBatch(
        K=torch.stack([s.K for s in scenes]).to(**f32),
        c2w=torch.stack([s.c2w for s in scenes]).to(**f32),
        is_room=torch.tensor([s.environment == "room" for s in scenes], device=device),
        room=torch.stack([s.room for s in scenes]).to(**f32),
        dome_radius=torch.tensor([s.dome_radius for s in scenes], **f32),
        groups=_object_groups(scenes, num_frames, f32), surfaces=surfaces.to(**f32),
        surface_dynamic=dynamic.to(device),
        light_dir=torch.stack([s.light_dir for s in scenes]).to(**f32),
        ambient=torch.tensor([s.ambient for s in scenes], **f32),
        light_colour=torch.stack([s.light_colour for s in scenes]).to(**f32),
        sun=torch.tensor([s.sun for s in scenes], **f32),
        lamps=lamps.to(**f32) if bool((lamps[..., 3] > 0).any()) else None,
        natural=scenes[0].textures == "natural", boxes=_box_group(scenes, num_frames, f32))


# --- casting -----------------------------------------------------------------------------------------------

def _gather_rays(values: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``values (B, T, M, F)`` picked per ray by ``index (B, T, N)`` -> F contiguous ``(B, T, N)`` tensors."""
    b, t, m, f = values.shape
    picked = torch.gather(values.reshape(b * t, m, f), 1, index.reshape(b * t, -1, 1).expand(-1, -1, f))
    return tuple(picked.reshape(b, t, -1, f).movedim(-1, 0).contiguous().unbind(0))


def _wave(x: torch.Tensor) -> torch.Tensor:
    """A smooth cosine-like periodic function of period 1 with values in [0, 1] (smoothstep of a
    triangle wave); used in place of sin so textures stay exactly reproducible (see module docstring)."""
    tri = (2.0 * (x - torch.floor(x)) - 1.0).abs()
    return tri * tri * (3.0 - 2.0 * tri)


def _albedo(tex: tuple[torch.Tensor, ...], q: Vec, footprint: torch.Tensor) -> Vec:
    """Colour of per-ray texture rows ``tex`` (TEX_SIZE tensors) at texture coordinates ``q``.

    Detail finer than about two pixels (``footprint``: metres a pixel covers on the surface) fades to its
    mean, a cheap band limit against aliasing shimmer at a distance.
    """
    field = torch.zeros_like(q[0])
    freq, phase, weight, freq_norm = tex[TEX_FREQ], tex[TEX_PHASE], tex[TEX_WEIGHT], tex[TEX_FREQ_NORM]
    for k in range(NUM_WAVES):
        fade = (2.0 - 4.0 * freq_norm[k] * footprint).clamp(0.0, 1.0)
        wave = _wave(_dot(freq[3 * k:3 * k + 3], q) + phase[k])
        field = field + weight[k] * (0.5 + fade * (wave - 0.5))
    mix = ((field - 0.5) * tex[TEX_CONTRAST] + 0.5).clamp(0.0, 1.0)
    size = tex[TEX_CHECKER_SIZE]
    cells = [torch.floor((q_i + offset) / size) for q_i, offset in zip(q, tex[TEX_CHECKER_OFFSET])]
    total = cells[0] + cells[1] + cells[2]
    fade = (2.0 - 2.0 * footprint / size).clamp(0.0, 1.0)  # checker period = 2 cells
    checker = tex[TEX_CHECKER_WEIGHT] * (0.5 + fade * ((total - 2.0 * torch.floor(total * 0.5)) - 0.5))
    palette = tex[TEX_PALETTE]
    colour = []
    for i in range(3):
        base = palette[i] + mix * (palette[3 + i] - palette[i])
        colour.append(base + checker * (palette[6 + i] - base))
    return tuple(colour)


def _hit_static_boxes(boxes: BoxGroup, origin: Vec, direction: Vec, height: int, width: int):
    """Nearest entry of the rays into the static boxes, testing only (ray, box) pairs inside the box's rectangle.

    Returns ``(t, key)``, both ``(B, T, N)``: the ray parameter (inf on a miss) and ``3 * slot + axis`` of the
    entry face of the nearest box (ties: the lowest key; ``3 * F`` on a miss).
    """
    B, T, F = boxes.rect.shape[:3]
    device = boxes.lo.device
    rect = boxes.rect.reshape(-1, 4)
    cols = (rect[:, 1] - rect[:, 0] + 1).clamp(min=0)
    counts = cols * (rect[:, 3] - rect[:, 2] + 1).clamp(min=0)
    owner = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)  # (b, t, slot) of each pair
    local = torch.arange(len(owner), device=device) - (torch.cumsum(counts, 0) - counts)[owner]
    span = cols[owner]
    row = rect[owner, 2] + torch.div(local, span, rounding_mode="floor")
    frame = torch.div(owner, F, rounding_mode="floor")  # b * T + t
    ray = (frame * height + row) * width + rect[owner, 0] + local % span
    corners = [tuple(((bound[..., i] - o).reshape(-1))[owner] for i, o in enumerate(origin))
               for bound in (boxes.lo, boxes.hi)]  # (box bound - camera centre) per pair, per axis
    near, far = [], []
    for i in range(3):
        inv = 1.0 / direction[i].reshape(-1)[ray]
        t1, t2 = corners[0][i] * inv, corners[1][i] * inv
        near.append(torch.minimum(t1, t2))
        far.append(torch.maximum(t1, t2))
    t_near = torch.maximum(torch.maximum(near[0], near[1]), near[2])
    t_far = torch.minimum(torch.minimum(far[0], far[1]), far[2])
    t = torch.where((t_near <= t_far) & (t_near > 0), t_near, _INF)
    total = B * T * height * width
    best = torch.full((total,), _INF, device=device).scatter_reduce(0, ray, t, "amin")
    won = torch.isfinite(t) & (t == best[ray])
    key = 3 * (owner % F) + _first_axis(tuple(near), t_near)
    best_key = torch.full((total,), 3 * F, dtype=torch.long, device=device).scatter_reduce(0, ray[won], key[won],
                                                                                            "amin")
    return best.view(B, T, -1), best_key.view(B, T, -1)


class _RayGrid:
    """Camera rays through every pixel centre: direction ``M @ (x(u), y(v), 1)`` for any per-frame matrix ``M``.

    Camera rays (z = 1) are separable: x depends on the column, y on the row, so a ray direction in any frame is
    ``(M e0) x(u) + (M e2) + (M e1) y(v)``: one full-size add per component, no full-size matmul.
    """

    def __init__(self, K: torch.Tensor, height: int, width: int):
        device = K.device
        self.batch, self.height, self.width = K.shape[0], height, width
        self.x = ((torch.arange(width, dtype=torch.float32, device=device) - K[:, 0, 2, None]) / K[:, 0, 0, None])
        self.y = ((torch.arange(height, dtype=torch.float32, device=device) - K[:, 1, 2, None]) / K[:, 1, 1, None])

    def along(self, rows, extra: int) -> Vec:
        """Rays ``rows @ (x, y, 1)`` for matrix entries ``(B, T, *extra dims)`` -> ``(B, T, *, H * W)``."""
        xx = self.x.view(self.batch, 1, *([1] * extra), 1, self.width)
        yy = self.y.view(self.batch, 1, *([1] * extra), self.height, 1)
        return tuple(((r[0][..., None, None] * xx + r[2][..., None, None]) + r[1][..., None, None] * yy).flatten(-2)
                     for r in rows)


def _environment_hits(batch: SceneBatch, origin: Vec, direction: Vec):
    """Depth ``(B, T, N)`` and surface index of the environment along every ray, plus the room wall and the
    open-ground flags the normals need."""
    is_room = batch.is_room[:, None, None]
    room_t, wall = room_exit(origin, direction, _components(batch.room[:, None, None]))
    open_t, ground = open_hit(origin, direction, batch.dome_radius[:, None, None])
    depth = torch.where(is_room, room_t, open_t)
    surface = torch.where(is_room, wall, torch.where(ground, 0, 1))
    return depth, surface, wall, ground


def _object_hits(batch: SceneBatch, grid: _RayGrid, rot, origin: Vec, depth: torch.Tensor, surface: torch.Tensor):
    """Nearer object hits replace ``depth`` / ``surface``; also returns which primitive kind won each ray
    (``winner``: index into ``batch.groups``, -1 = environment) and the slot of the nearest object of each kind."""
    B, T = batch.c2w.shape[:2]
    winner = torch.full_like(surface, -1)
    slots = {}
    for index, (kind, group) in enumerate(batch.groups.items()):
        # world -> unit-primitive frame: x_local = (R^T (x - p)) / s, rows of R^T / s
        to_local = _entries(group.rotation / group.scale[:, None, :, None, :], transpose=True)  # (B, T, M)
        o_rel = tuple(o - p for o, p in zip(origin, _components(group.position)))
        o_local = tuple(c[..., None] for c in _matvec(to_local, o_rel))  # (B, T, M, 1)
        cam_to_local = [[sum(to_local[i][j] * rot[j][k][:, :, None] for j in range(3)) for k in range(3)]
                        for i in range(3)]  # (B, T, M)
        d_local = grid.along(cam_to_local, 1)  # (B, T, M, N)
        t = torch.where(group.mask[:, None, :, None], _UNIT_HIT[kind](o_local, d_local), _INF)
        t_kind, slot = t.min(dim=2)
        closer = t_kind < depth
        depth = torch.where(closer, t_kind, depth)
        winner = torch.where(closer, index, winner)
        surface = torch.where(closer, torch.gather(group.surface[:, None].expand(B, T, -1), 2, slot), surface)
        slots[kind] = slot
    return depth, surface, winner, slots


def _static_box_hits(batch: SceneBatch, origin: Vec, direction: Vec, depth: torch.Tensor, surface: torch.Tensor,
                     winner: torch.Tensor, height: int, width: int):
    """Nearer static-box hits replace ``depth`` / ``surface``, and ``winner`` becomes ``len(batch.groups)`` on them;
    also returns the entry-face key of every ray (see `_hit_static_boxes`)."""
    box_t, box_key = _hit_static_boxes(batch.boxes, origin, direction, height, width)
    closer = box_t < depth
    box_slot = torch.div(box_key, 3, rounding_mode="floor").clamp(max=batch.boxes.surface.shape[1] - 1)
    box_surface = torch.gather(batch.boxes.surface, 1, box_slot.reshape(depth.shape[0], -1)).view_as(surface)
    return (torch.where(closer, box_t, depth), torch.where(closer, box_surface, surface),
            torch.where(closer, len(batch.groups), winner), box_key)


def _object_frames(batch: SceneBatch, winner, slots, points: Vec, normal: list, coords: list, tex_normal: list):
    """Write the world normal and the object-frame texture coordinates (and, for image textures, the object-frame
    normal) of the rays each moving object won into the flat per-ray lists."""
    B, T, N = winner.shape
    flat_points = [c.flatten() for c in points]
    for index, (kind, group) in enumerate(batch.groups.items()):
        # only the rays this kind won: their object's pose and size, then local point and normal
        rays = (winner == index).flatten().nonzero().squeeze(1)
        slots_count = group.mask.shape[1]
        packed = torch.cat([group.rotation.flatten(-2), group.position,
                            group.scale[:, None].expand(B, T, -1, -1)], dim=-1).reshape(-1, 15)
        row = torch.div(rays, N, rounding_mode="floor") * slots_count + slots[kind].flatten()[rays]
        picked = packed[row].T.contiguous()  # (15, n): rotation (9), position (3), scale (3)
        rotation = [list(picked[3 * i:3 * i + 3]) for i in range(3)]
        scale = picked[12:15]
        local = _matvec([list(col) for col in zip(*rotation)],
                        tuple(x[rays] - p for x, p in zip(flat_points, picked[9:12])))
        unit_normal = _unit_normal(kind, tuple(x / s for x, s in zip(local, scale)))
        local_normal = tuple(n / s for n, s in zip(unit_normal, scale))
        kind_normal = _matvec(rotation, local_normal)
        for i in range(3):
            normal[i][rays] = kind_normal[i]
            coords[i][rays] = local[i]
            if tex_normal:
                tex_normal[i][rays] = local_normal[i]


def _box_frames(box_key: torch.Tensor, winner: torch.Tensor, index: int, normal: list, tex_normal: list) -> None:
    """World (= texture-frame) normals of the rays a static box won: the axis of the face they entered."""
    rays = (winner == index).flatten().nonzero().squeeze(1)
    axis = box_key.flatten()[rays] % 3
    for i in range(3):
        face = (axis == i).to(normal[i].dtype)
        normal[i][rays] = face
        if tex_normal:
            tex_normal[i][rays] = face


def _normals_and_coords(batch: SceneBatch, points: Vec, depth: torch.Tensor, wall: torch.Tensor,
                        ground: torch.Tensor, winner: torch.Tensor, slots: dict,
                        box_key: torch.Tensor | None) -> tuple[Vec, Vec, Vec]:
    """Unit normals and texture coordinates of the hit points: world frame for the environment and the static
    boxes, the object's own frame for objects; plus, for image textures (``batch.natural``), the normals in the
    texture frame (unnormalised; empty otherwise)."""
    axis = torch.div(wall, 2, rounding_mode="floor")
    room_normal = tuple((axis == i).to(depth.dtype) for i in range(3))
    open_normal = (torch.where(ground, 0.0, points[0]), torch.where(ground, 0.0, points[1]),
                   torch.where(ground, 1.0, points[2]))
    is_room = batch.is_room[:, None, None]
    normal = [torch.where(is_room, r, o).flatten() for r, o in zip(room_normal, open_normal)]
    coords = [c.flatten().clone() for c in points]
    tex_normal = [n.clone() for n in normal] if batch.natural else []
    _object_frames(batch, winner, slots, points, normal, coords, tex_normal)
    if box_key is not None:
        _box_frames(box_key, winner, len(batch.groups), normal, tex_normal)
    normal = tuple(n.view_as(depth) for n in normal)
    coords = tuple(c.view_as(depth) for c in coords)
    return _normalize(normal), coords, tuple(n.view_as(depth) for n in tex_normal)


def _image_colour(batch: SceneBatch, surface: torch.Tensor, coords: Vec, tex_normal: Vec, footprint: torch.Tensor):
    """Albedo and emissive mask of rays on image-textured surfaces: the texture is projected along the axis of the
    surface frame closest to the normal (box mapping), v pointing down on vertical faces."""
    B, T = surface.shape[:2]
    row = _gather_rays(batch.surfaces[:, None].expand(B, T, -1, -1), surface)
    size = tuple(n.abs() for n in tex_normal)
    axis = _first_axis(size, torch.maximum(torch.maximum(size[0], size[1]), size[2]))
    u = torch.where(axis == 0, coords[1], coords[0])
    v = torch.where(axis == 2, coords[1], -coords[2])
    return image_albedo(texture_bank(surface.device), row, u, v, footprint), row[IMG_EMISSIVE] > 0


def _shade(batch: SceneBatch, points: Vec, normal: Vec, coords: Vec, tex_normal: Vec, direction: Vec,
           depth: torch.Tensor, surface: torch.Tensor) -> torch.Tensor:
    """``uint8 (B, T, N, 3)`` colours: band-limited albedo (procedural, or image textures when ``batch.natural``)
    times Lambert shading (emissive surfaces unshaded): ambient plus the directional light and the point lights,
    whose irradiance falls off with the squared distance (no shadows)."""
    B, T = batch.c2w.shape[:2]
    along_ray = _dot(normal, direction)
    facing = torch.where(along_ray > 0, -1.0, 1.0)  # flip normals to face the camera
    # surface width one pixel covers: depth / focal, stretched at grazing angles (cosine floored at 0.1: at most 10x)
    cosine = (along_ray.abs() / torch.sqrt(_dot(direction, direction))).clamp(min=0.1)
    footprint = depth / (batch.K[:, 0, 0, None, None] * cosine)

    if batch.natural:
        albedo, emissive = _image_colour(batch, surface, coords, tex_normal, footprint)
    else:
        tex = _gather_rays(batch.surfaces[:, None].expand(B, T, -1, -1), surface)
        albedo, emissive = _albedo(tex, coords, footprint), tex[TEX_EMISSIVE] > 0
    lambert = (_dot(normal, _components(batch.light_dir[:, None, None])) * facing).clamp(min=0.0)
    lambert = batch.sun[:, None, None] * lambert
    if batch.lamps is not None:  # a scene without lamps has power 0 in every slot: it adds exactly 0 there
        for lamp in batch.lamps.unbind(1):
            to_lamp = tuple(lamp[:, k, None, None] - p for k, p in enumerate(points))
            squared = _dot(to_lamp, to_lamp).clamp(min=1e-4)
            cosine_in = (_dot(normal, to_lamp) * facing).clamp(min=0.0) / torch.sqrt(squared)
            lambert = lambert + lamp[:, 3, None, None] * cosine_in / squared
    ambient = batch.ambient[:, None, None]
    shade = torch.where(emissive, 1.0, ambient + (1.0 - ambient) * lambert)
    light = _components(batch.light_colour[:, None, None])
    colour = [(c * shade * l).clamp(0.0, 1.0) for c, l in zip(albedo, light)]
    return torch.floor(torch.stack(colour, dim=-1) * 255.0 + 0.5).to(torch.uint8)  # round to nearest


def cast(batch: SceneBatch, height: int, width: int) -> dict[str, torch.Tensor]:
    """Ray cast every frame of every clip of ``batch``.

    Returns depth ``(B, T, H, W)``, points ``(B, T, H, W, 3)`` (world), rgb uint8 ``(B, T, H, W, 3)``,
    dynamic bool ``(B, T, H, W)``.
    """
    B, T = batch.c2w.shape[:2]
    grid = _RayGrid(batch.K, height, width)
    rot = _entries(batch.c2w[:, :, :3, :3])  # (B, T) entries
    direction = grid.along(rot, 0)  # (B, T, N)
    origin = _components(batch.c2w[:, :, None, :3, 3])  # (B, T, 1)
    depth, surface, wall, ground = _environment_hits(batch, origin, direction)
    depth, surface, winner, slots = _object_hits(batch, grid, rot, origin, depth, surface)
    box_key = None
    if batch.boxes is not None:
        depth, surface, winner, box_key = _static_box_hits(batch, origin, direction, depth, surface, winner,
                                                           height, width)
    points = tuple(o + depth * d for o, d in zip(origin, direction))
    normal, coords, tex_normal = _normals_and_coords(batch, points, depth, wall, ground, winner, slots, box_key)
    rgb = _shade(batch, points, normal, coords, tex_normal, direction, depth, surface)
    dynamic = torch.gather(batch.surface_dynamic, 1, surface.reshape(B, -1))
    shape = (B, T, height, width)
    return {"rgb": rgb.reshape(*shape, 3), "depth": depth.reshape(shape),
            "points": torch.stack(points, dim=-1).reshape(*shape, 3), "dynamic": dynamic.reshape(shape)}
