"""Static structure of furnished scenes, built from boxes aligned with the world axes.

Rooms get furniture made of a few boxes each (tables, chairs, sofas, beds, shelves with books, cabinets, a TV unit),
mostly standing against the walls, a rug, small things on tables and shelves, doors and windows as panels inset in
frames on the walls, pictures, and a lamp on the ceiling. Open scenes get buildings, walls, benches, steps and posts.
Nothing is placed where the camera passes. Everything runs on the CPU in float64 from one `Sampler`.

A room spans ``[-hx, hx] x [-hy, hy] x [0, h]`` (world z up); an open scene is ground z = 0 inside a dome of radius R.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sora3r.data.synthetic.sampler import F64, Sampler

# What a box is made of; `scene` turns each into an image-texture row (emissive ones are unlit).
MATERIALS = ("wood", "fabric", "paint", "metal", "book", "picture", "window", "lamp", "screen", "rug", "clutter",
             "building", "stone")
EMISSIVE_MATERIALS = ("window", "lamp")
_GAP = 0.02  # metres kept between pieces
_CAMERA_CLEARANCE = 0.3  # metres kept between a piece and every camera position
_NEAR = 1e-3  # near plane of the screen rectangles, metres


@dataclass(frozen=True)
class Layout:
    """Boxes ``lo, hi (F, 3)`` with ``surface (F,)`` indices into ``materials`` (one entry per textured surface),
    and ``supports (P, 5)``: tops that small things can stand on, as ``x0, x1, y0, y1, z``. Every material has at
    least one box."""

    lo: torch.Tensor
    hi: torch.Tensor
    surface: torch.Tensor
    materials: tuple[str, ...]
    supports: torch.Tensor

    def surface_bounds(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Corners ``(3,), (3,)`` of the box around every box of surface ``index``."""
        mine = self.surface == index
        return self.lo[mine].amin(dim=0), self.hi[mine].amax(dim=0)


# A piece in its own frame: x along its width, y from its back (0) to its front, z up; each part is
# (x0, x1, y0, y1, z0, z1, material slot); `slots` names the piece's materials; `tops` lists support parts.
@dataclass
class _Piece:
    parts: list[tuple[float, float, float, float, float, float, int]]
    slots: tuple[str, ...]
    tops: tuple[int, ...] = ()

    def size(self) -> tuple[float, float]:
        return max(p[1] for p in self.parts), max(p[3] for p in self.parts)


def _table(rng: Sampler, chair: bool = False) -> _Piece:
    width, depth = (rng.uniform(0.4, 0.5),) * 2 if chair else (rng.uniform(0.7, 1.8), rng.uniform(0.5, 1.0))
    height = rng.uniform(0.42, 0.5) if chair else rng.uniform(0.68, 0.78)
    top, leg, inset = rng.uniform(0.025, 0.05), rng.uniform(0.03, 0.07), rng.uniform(0.0, 0.05)
    parts = [(0.0, width, 0.0, depth, height - top, height, 0)]
    for x in (inset, width - inset - leg):
        for y in (inset, depth - inset - leg):
            parts.append((x, x + leg, y, y + leg, 0.0, height - top, 0))
    if chair:
        parts.append((0.0, width, 0.0, 0.04, height, height + rng.uniform(0.35, 0.5), 0))
    return _Piece(parts, ("wood",), tops=() if chair else (0,))


def _sofa(rng: Sampler) -> _Piece:
    width, depth = rng.uniform(1.4, 2.4), rng.uniform(0.8, 1.0)
    seat, back, arm = rng.uniform(0.38, 0.48), rng.uniform(0.75, 0.95), rng.uniform(0.08, 0.25)
    back_depth, arm_height = rng.uniform(0.15, 0.3), rng.uniform(0.5, 0.65)
    return _Piece([(0.0, width, 0.0, back_depth, 0.0, back, 0), (0.0, arm, back_depth, depth, 0.0, arm_height, 0),
                   (width - arm, width, back_depth, depth, 0.0, arm_height, 0),
                   (arm, width - arm, back_depth, depth, 0.0, seat, 0)], ("fabric",))


def _bed(rng: Sampler) -> _Piece:
    width, depth = rng.uniform(0.9, 1.8), rng.uniform(1.9, 2.1)
    frame, mattress, head = rng.uniform(0.2, 0.35), rng.uniform(0.15, 0.25), rng.uniform(0.8, 1.1)
    top = frame + mattress
    parts = [(0.0, width, 0.06, depth, 0.0, frame, 0), (0.0, width, 0.0, 0.06, 0.0, head, 0),
             (0.03, width - 0.03, 0.08, depth - 0.03, frame, top, 1)]
    pillows = 2 if width > 1.3 else 1
    for i in range(pillows):
        x0 = 0.08 + i * (width - 0.16) / pillows
        parts.append((x0, x0 + (width - 0.16) / pillows - 0.06, 0.1, 0.5, top, top + rng.uniform(0.08, 0.15), 1))
    return _Piece(parts, ("wood", "fabric"))


def _shelf(rng: Sampler) -> _Piece:
    width, depth, height = rng.uniform(0.6, 1.6), rng.uniform(0.25, 0.4), rng.uniform(0.9, 2.1)
    board = rng.uniform(0.018, 0.03)
    parts = [(0.0, board, 0.0, depth, 0.0, height, 0), (width - board, width, 0.0, depth, 0.0, height, 0),
             (board, width - board, 0.0, 0.015, 0.0, height, 0), (board, width - board, 0.0, depth, height - board,
                                                                  height, 0)]
    levels = rng.integer(1, max(1, int(height / 0.35)))
    for k in range(levels):
        z = (k + 0.15) * (height - board) / (levels + 0.15)
        parts.append((board, width - board, 0.015, depth, z, z + board, 0))
        if rng.chance(0.7):  # a row of books
            x0 = board + rng.uniform(0.0, 0.4) * (width - 2 * board)
            x1 = min(width - board, x0 + rng.uniform(0.15, 0.8) * (width - 2 * board))
            room_above = (height - board) / (levels + 0.15) - board
            parts.append((x0, x1, 0.02, depth * rng.uniform(0.6, 0.95), z + board,
                          z + board + room_above * rng.uniform(0.5, 0.9), 1))
    return _Piece(parts, ("wood", "book"), tops=(3,))


def _cabinet(rng: Sampler) -> _Piece:
    width, depth, height = rng.uniform(0.5, 2.0), rng.uniform(0.35, 0.6), rng.uniform(0.45, 2.0)
    parts = [(0.0, width, 0.0, depth, 0.0, height, 0)]
    doors = 1 if width < 0.8 else 2
    for i in range(doors):
        x0, x1 = 0.02 + i * width / doors, (i + 1) * width / doors - 0.02
        parts.append((x0, x1, depth, depth + 0.015, 0.03, height - 0.03, 0))
        handle = x1 - 0.06 if i == doors - 1 else x0 + 0.03
        parts.append((handle, handle + 0.03, depth + 0.015, depth + 0.035, 0.6 * height, 0.6 * height + 0.1, 1))
    if height < 0.7 and rng.chance(0.6):  # a TV unit
        screen_w = min(width, rng.uniform(0.7, 1.4))
        x0 = (width - screen_w) / 2
        parts.append((x0, x0 + screen_w, 0.1, 0.15, height + 0.06, height + 0.06 + screen_w * 0.58, 2))
        parts.append((width / 2 - 0.1, width / 2 + 0.1, 0.08, 0.2, height, height + 0.06, 1))
    return _Piece(parts, ("paint", "metal", "screen"), tops=(0,))


def _framed_panel(rng: Sampler, width: float, z0: float, z1: float, frame: float, depth: float, panel: str,
                  sill: bool = False) -> _Piece:
    """A panel inset in a frame on a wall (door, window, picture): four bars ``depth`` deep around a thin panel."""
    parts = [(0.0, frame, 0.0, depth, z0, z1, 0), (width - frame, width, 0.0, depth, z0, z1, 0),
             (frame, width - frame, 0.0, depth, z1 - frame, z1, 0),
             (frame, width - frame, 0.0, 0.006, z0 + (frame if z0 > 0 else 0.0), z1 - frame, 1)]
    if z0 > 0:
        parts.append((frame, width - frame, 0.0, depth, z0, z0 + frame, 0))
    if sill:
        parts.append((-0.03, width + 0.03, 0.0, depth + rng.uniform(0.04, 0.15), z0 - 0.04, z0, 0))
    if panel == "window" and rng.chance(0.5):  # a mullion
        parts.append((width / 2 - frame / 3, width / 2 + frame / 3, 0.0, depth * 0.6, z0, z1, 0))
    return _Piece(parts, ("wood" if rng.chance(0.5) else "paint", panel))


def _wall_fitting(rng: Sampler, kind: str) -> _Piece:
    if kind == "door":
        height = rng.uniform(2.0, 2.15)
        piece = _framed_panel(rng, rng.uniform(0.85, 1.05), 0.0, height, rng.uniform(0.05, 0.09),
                              rng.uniform(0.025, 0.05), "paint")
        width = piece.size()[0]
        piece.parts.append((width - 0.2, width - 0.12, 0.0, 0.06, 0.95, 1.0, 0))  # handle
        return piece
    if kind == "window":
        z0 = rng.uniform(0.7, 1.1)
        return _framed_panel(rng, rng.uniform(0.6, 1.8), z0, z0 + rng.uniform(0.8, 1.4), rng.uniform(0.04, 0.09),
                             rng.uniform(0.05, 0.1), "window", sill=True)
    z0 = rng.uniform(1.0, 1.6)
    return _framed_panel(rng, rng.uniform(0.3, 1.2), z0, z0 + rng.uniform(0.3, 0.9), rng.uniform(0.015, 0.05),
                         rng.uniform(0.02, 0.04), "picture")


class _Builder:
    """Collects pieces that fit: inside the bounds, clear of each other and of the camera path."""

    def __init__(self, bound_lo: torch.Tensor, bound_hi: torch.Tensor, eyes: torch.Tensor):
        self.bound_lo, self.bound_hi, self.eyes = bound_lo, bound_hi, eyes
        self.boxes: list[tuple[torch.Tensor, torch.Tensor, int]] = []
        self.taken_lo, self.taken_hi = torch.zeros(0, 3, dtype=F64), torch.zeros(0, 3, dtype=F64)  # placed pieces
        self.materials: list[str] = []
        self.supports: list[torch.Tensor] = []

    def fits(self, lo: torch.Tensor, hi: torch.Tensor, clearance: float, gap: float) -> bool:
        if bool((lo < self.bound_lo - 1e-9).any() or (hi > self.bound_hi + 1e-9).any()):
            return False
        near = ((self.eyes > lo - clearance) & (self.eyes < hi + clearance)).all(dim=1)
        apart = ((lo >= self.taken_hi + gap) | (hi <= self.taken_lo - gap)).any(dim=1)  # along some axis
        return not bool(near.any()) and bool(apart.all())

    def add(self, boxes: list[tuple[torch.Tensor, torch.Tensor, int]], slots: tuple[str, ...], tops: tuple[int, ...],
            clearance: float = _CAMERA_CLEARANCE, gap: float = _GAP) -> bool:
        """Add a piece (boxes ``(lo, hi, material slot)``) if its bounds fit; ``tops``: its parts that are supports.
        ``gap = 0`` lets it touch other pieces (things standing on a table)."""
        lo = torch.stack([b[0] for b in boxes]).amin(dim=0)
        hi = torch.stack([b[1] for b in boxes]).amax(dim=0)
        if not self.fits(lo, hi, clearance, gap):
            return False
        self.taken_lo, self.taken_hi = torch.cat([self.taken_lo, lo[None]]), torch.cat([self.taken_hi, hi[None]])
        used = sorted({slot for _, _, slot in boxes})  # a piece's unused materials get no surface
        surface = {slot: len(self.materials) + i for i, slot in enumerate(used)}
        self.materials += [slots[slot] for slot in used]
        self.boxes += [(l, h, surface[slot]) for l, h, slot in boxes]
        self.supports += [torch.stack([boxes[i][0][0], boxes[i][1][0], boxes[i][0][1], boxes[i][1][1], boxes[i][1][2]])
                          for i in tops]
        return True

    def layout(self) -> Layout:
        empty = torch.zeros(0, 3, dtype=F64)
        return Layout(lo=torch.stack([b[0] for b in self.boxes]) if self.boxes else empty,
                      hi=torch.stack([b[1] for b in self.boxes]) if self.boxes else empty,
                      surface=torch.tensor([b[2] for b in self.boxes], dtype=torch.long),
                      materials=tuple(self.materials),
                      supports=torch.stack(self.supports) if self.supports else torch.zeros(0, 5, dtype=F64))


def _to_world(piece: _Piece, wall: int, along: float, room: torch.Tensor) -> list:
    """The parts of ``piece`` with their back on ``wall`` (0: x = -hx, 1: x = hx, 2: y = -hy, 3: y = hy) starting
    ``along`` metres from the wall's low end; wall -1: free-standing, ``room`` then holds its low corner (x, y)."""
    boxes = []
    for x0, x1, y0, y1, z0, z1, slot in piece.parts:
        if wall == -1:
            lo, hi = [room[0] + x0, room[1] + y0], [room[0] + x1, room[1] + y1]
        elif wall in (0, 1):
            side = -room[0] if wall == 0 else room[0]
            u = (side + y0, side + y1) if wall == 0 else (side - y1, side - y0)
            lo, hi = [u[0], -room[1] + along + x0], [u[1], -room[1] + along + x1]
        else:
            side = -room[1] if wall == 2 else room[1]
            v = (side + y0, side + y1) if wall == 2 else (side - y1, side - y0)
            lo, hi = [-room[0] + along + x0, v[0]], [-room[0] + along + x1, v[1]]
        boxes.append((torch.tensor([*lo, z0], dtype=F64), torch.tensor([*hi, z1], dtype=F64), slot))
    return boxes


def _place(rng: Sampler, builder: _Builder, piece: _Piece, room: torch.Tensor, wall: bool, attempts: int = 8) -> bool:
    """Try ``attempts`` random spots for ``piece``: against a random wall, or free-standing inside the room."""
    width, depth = piece.size()
    for _ in range(attempts):
        if wall:
            side = rng.integer(0, 3)
            length = 2 * float(room[1] if side < 2 else room[0])
            if length < width + 0.1:
                continue
            boxes = _to_world(piece, side, rng.uniform(0.05, length - width - 0.05), room)
        else:
            corner = [rng.uniform(-float(room[i]) + 0.3, float(room[i]) - 0.3 - (width, depth)[i]) for i in (0, 1)]
            boxes = _to_world(piece, -1, 0.0, torch.tensor(corner, dtype=F64))
        if builder.add(boxes, piece.slots, piece.tops):
            return True
    return False


def furnish_room(rng: Sampler, room: torch.Tensor, eyes: torch.Tensor) -> Layout:
    """Furniture and fittings of the room of half sizes + height ``room (3,)`` around camera positions ``eyes``."""
    builder = _Builder(torch.tensor([-room[0], -room[1], 0.0], dtype=F64), room.clone(), eyes)
    if rng.chance(0.7):
        _place(rng, builder, _wall_fitting(rng, "door"), room, wall=True)
    for kind in ["window"] * rng.integer(0, 2) + ["picture"] * rng.integer(0, 3):
        _place(rng, builder, _wall_fitting(rng, kind), room, wall=True)
    makers = (_table, _sofa, _bed, _shelf, _cabinet, _shelf, _cabinet)
    for _ in range(rng.integer(2, 5)):
        _place(rng, builder, makers[rng.integer(0, len(makers) - 1)](rng), room, wall=rng.chance(0.8))
    for _ in range(rng.integer(0, 2)):
        _place(rng, builder, _table(rng, chair=True), room, wall=False)
    if rng.chance(0.4):
        size = rng.vector([0.8, 0.6], [2.8, 2.0])
        _place(rng, builder, _Piece([(0.0, float(size[0]), 0.0, float(size[1]), 0.0, 0.012, 0)], ("rug",)), room,
               wall=False)
    if rng.chance(0.6):
        side = rng.uniform(0.15, 0.35)
        centre = rng.vector(-room[:2] * 0.6, room[:2] * 0.6)
        builder.add([(torch.tensor([centre[0] - side, centre[1] - side, room[2] - rng.uniform(0.03, 0.12)], dtype=F64),
                      torch.tensor([centre[0] + side, centre[1] + side, room[2]], dtype=F64), 0)], ("lamp",), (), 0.0)
    _clutter(rng, builder)
    return builder.layout()


def _clutter(rng: Sampler, builder: _Builder) -> None:
    """Small boxes standing on tables, shelves and cabinets."""
    for _ in range(rng.integer(0, 4) if builder.supports else 0):
        x0, x1, y0, y1, z = builder.supports[rng.integer(0, len(builder.supports) - 1)].tolist()
        size = rng.vector([0.04, 0.04, 0.03], [0.2, 0.2, 0.35])
        if x1 - x0 < 2 * size[0] + 0.02 or y1 - y0 < 2 * size[1] + 0.02:
            continue
        x, y = rng.uniform(x0 + size[0], x1 - size[0]), rng.uniform(y0 + size[1], y1 - size[1])
        builder.add([(torch.tensor([x - size[0], y - size[1], z], dtype=F64),
                      torch.tensor([x + size[0], y + size[1], z + 2 * size[2]], dtype=F64), 0)], ("clutter",), (),
                    0.1, gap=0.0)


def furnish_open(rng: Sampler, dome_radius: float, eyes: torch.Tensor) -> Layout:
    """Buildings, walls, benches, steps and posts of an open scene around camera positions ``eyes``."""
    reach = 0.7 * dome_radius
    builder = _Builder(torch.tensor([-reach, -reach, 0.0], dtype=F64), torch.tensor([reach, reach, 60.0], dtype=F64),
                       eyes)
    centre = eyes.mean(dim=0)

    def box_near(distance: tuple[float, float], size_lo: list, size_hi: list) -> list:
        angle, r = rng.uniform(0.0, 2 * math.pi), rng.uniform(*distance)
        size = rng.vector(size_lo, size_hi)
        if rng.chance(0.5):
            size[[0, 1]] = size[[1, 0]].clone()
        middle = torch.tensor([centre[0] + r * math.cos(angle), centre[1] + r * math.sin(angle), size[2] / 2],
                              dtype=F64)
        return [middle - size / 2, middle + size / 2]

    for _ in range(rng.integer(3, 10)):  # buildings
        lo, hi = box_near((0.2 * dome_radius, 0.6 * dome_radius), [4.0, 4.0, 3.0], [16.0, 16.0, 25.0])
        builder.add([(lo, hi, 0)], ("building",), (), 1.0)
    for _ in range(rng.integer(0, 3)):  # low walls and fences
        lo, hi = box_near((3.0, 0.3 * dome_radius), [5.0, 0.15, 0.4], [20.0, 0.4, 2.0])
        builder.add([(lo, hi, 0)], ("stone",), (), 0.5)
    for _ in range(rng.integer(0, 3)):  # steps and platforms: stacked slabs
        lo, hi = box_near((2.0, 0.2 * dome_radius), [1.5, 1.5, 0.12], [6.0, 6.0, 0.3])
        layers = [(lo, hi, 0)]
        for _ in range(rng.integer(0, 2)):  # each layer 15 % smaller on every side, on top of the last
            inset = (hi - lo) * torch.tensor([0.15, 0.15, 0.0], dtype=F64)
            rise = torch.tensor([0.0, 0.0, float(hi[2] - lo[2])], dtype=F64)
            lo, hi = lo + inset + rise, hi - inset + rise
            layers.append((lo, hi, 0))
        builder.add(layers, ("stone",), (0,), 0.5)
    for _ in range(rng.integer(0, 4)):  # posts with a lamp head
        lo, hi = box_near((2.0, 0.25 * dome_radius), [0.08, 0.08, 2.5], [0.2, 0.2, 5.0])
        head = (hi - lo) * torch.tensor([1.5, 1.5, 0.0], dtype=F64) + torch.tensor([0.1, 0.1, 0.25], dtype=F64)
        middle = (lo + hi) / 2
        top = torch.tensor([middle[0], middle[1], hi[2]], dtype=F64)
        builder.add([(lo, hi, 0), (top - head * torch.tensor([0.5, 0.5, 0.0], dtype=F64),
                                   top + head * torch.tensor([0.5, 0.5, 1.0], dtype=F64), 1)], ("metal", "lamp"),
                    (), 0.5)
    return builder.layout()


def screen_rects(lo: torch.Tensor, hi: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor, height: int,
                 width: int) -> torch.Tensor:
    """Per frame and box, the inclusive pixel rectangle ``(u0, u1, v0, v1)`` (long, ``(T, F, 4)``) that contains
    every pixel centre whose ray can hit the box ``[lo, hi]`` (``(T, F, 3)`` each) in front of the camera (empty:
    ``u1 < u0``).

    The box is clipped to the half-space ``z > 1 mm`` of each camera; the convex hull of the projected vertices of
    that clipped box bounds its image, widened by one pixel against rounding.
    """
    corner = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], dtype=F64)
    corners = lo[:, :, None] + corner * (hi - lo)[:, :, None]  # (T, F, 8, 3)
    w2c = torch.linalg.inv(c2w)
    cam = torch.einsum("tij,tfcj->tfci", w2c[:, :3, :3], corners) + w2c[:, None, None, :3, 3]  # (T, F, 8, 3)
    edges = torch.tensor([(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1])
    p, q = cam[:, :, edges[:, 0]], cam[:, :, edges[:, 1]]  # (T, F, 12, 3)
    crossing = (p[..., 2] - _NEAR) * (q[..., 2] - _NEAR) < 0
    s = ((_NEAR - p[..., 2]) / torch.where(crossing, q[..., 2] - p[..., 2], 1.0))[..., None]
    points = torch.cat([cam, p + s * (q - p)], dim=2)
    usable = torch.cat([cam[..., 2] >= _NEAR, crossing], dim=2)
    z = points[..., 2].clamp(min=_NEAR)
    u = K[0, 0] * points[..., 0] / z + K[0, 2]
    v = K[1, 1] * points[..., 1] / z + K[1, 2]
    inf = torch.tensor(float("inf"), dtype=F64)
    bounds = [torch.where(usable, c, inf).amin(dim=2) for c in (u, v)] + \
             [torch.where(usable, c, -inf).amax(dim=2) for c in (u, v)]
    u0 = (torch.floor(bounds[0]) - 1).clamp(min=0)
    v0 = (torch.floor(bounds[1]) - 1).clamp(min=0)
    u1 = (torch.ceil(bounds[2]) + 1).clamp(max=width - 1)
    v1 = (torch.ceil(bounds[3]) + 1).clamp(max=height - 1)
    empty = ~usable.any(dim=2) | (u0 > u1) | (v0 > v1)
    rect = torch.stack([u0, u1, v0, v1], dim=-1).nan_to_num(0.0).long()
    return torch.where(empty[..., None], torch.tensor([0, -1, 0, -1]), rect)


@dataclass(frozen=True)
class Walkers:
    """People made of boxes that walk or run: per-frame boxes ``lo, hi (T, P, 3)``, ``surface (P,)`` indices into
    ``materials`` (clothes, trousers, skin of each person)."""

    lo: torch.Tensor
    hi: torch.Tensor
    surface: torch.Tensor
    materials: tuple[str, ...]


def _figure(rng: Sampler, times: torch.Tensor, start: torch.Tensor, heading: int, speed: float):
    """Boxes ``lo, hi (T, 6, 3)`` of a person walking from ``start`` (floor point, ``(3,)``) along world axis
    ``heading // 2`` (sign ``+`` when even) at ``speed`` m/s: two legs and two arms swinging in opposition, torso,
    head; and the material slot of each box (0 clothes, 1 trousers, 2 skin)."""
    height = rng.uniform(1.5, 1.9)
    hip, shoulder, depth = rng.uniform(0.09, 0.12), rng.uniform(0.17, 0.24), rng.uniform(0.1, 0.15)
    limb, head = rng.uniform(0.055, 0.08), rng.uniform(0.09, 0.12)
    stride = rng.uniform(0.55, 0.8) * (1.6 if speed > 2.0 else 1.0)
    swing = 0.25 * stride * torch.sin(math.pi * speed / stride * times + rng.uniform(0, 2 * math.pi))
    along, sign = heading // 2, 1.0 if heading % 2 == 0 else -1.0
    across = 1 - along
    centre = start.expand(len(times), 3).clone()
    centre[:, along] += sign * speed * (times - times[len(times) // 2])
    leg, waist, neck = 0.47 * height, 0.5 * height, 0.82 * height
    still = torch.zeros_like(swing)
    # (offset across, offset along per frame, half across, half along, z0, z1, material slot)
    parts = [(-hip, swing, limb, limb, 0.0, leg, 1), (hip, -swing, limb, limb, 0.0, leg, 1),
             (0.0, still, shoulder, depth, waist - 0.05, neck, 0), (0.0, still, head, head, neck + 0.02, height, 2),
             (-shoulder - limb, -0.7 * swing, limb, limb, waist, neck - 0.02, 0),
             (shoulder + limb, 0.7 * swing, limb, limb, waist, neck - 0.02, 0)]
    lo, hi = [], []
    for off_across, off_along, half_across, half_along, z0, z1, _ in parts:
        middle = centre.clone()
        middle[:, across] += off_across
        middle[:, along] += off_along
        half = torch.zeros(3, dtype=F64)
        half[across], half[along] = half_across, half_along
        lo.append(torch.cat([(middle - half)[:, :2], torch.full((len(times), 1), z0, dtype=F64)], dim=1))
        hi.append(torch.cat([(middle + half)[:, :2], torch.full((len(times), 1), z1, dtype=F64)], dim=1))
    return torch.stack(lo, dim=1), torch.stack(hi, dim=1), [p[-1] for p in parts]


def walkers(rng: Sampler, times: torch.Tensor, bound_lo: torch.Tensor, bound_hi: torch.Tensor, c2w: torch.Tensor,
            layout: Layout, objects: tuple[torch.Tensor, torch.Tensor], count: int,
            distance: tuple[float, float]) -> Walkers:
    """Up to ``count`` people walking (sometimes running) along the world axes inside ``[bound_lo, bound_hi]``,
    in front of the middle frame's camera (``distance`` metres ahead, at most as far to the side), kept 0.5 m from
    every camera position (``c2w (T, 4, 4)``) and out of the layout's boxes and of the free objects
    (``positions (T, M, 3)``, bounding ``radii (M,)``) at every frame."""
    los, his, slots, materials = [], [], [], []
    eyes, middle = c2w[:, :3, 3], c2w[len(c2w) // 2]
    ahead = torch.nn.functional.normalize(middle[:2, 2], dim=0)  # the camera's forward axis on the floor
    side = torch.stack([-ahead[1], ahead[0]])
    for _ in range(count):
        for _attempt in range(10):
            speed = rng.uniform(2.0, 3.2) if rng.chance(0.2) else rng.uniform(0.5, 1.5)
            forward = rng.uniform(*distance)
            spot = middle[:2, 3] + forward * ahead + rng.uniform(-0.6, 0.6) * forward * side
            start = torch.cat([spot, torch.zeros(1, dtype=F64)])
            lo, hi, parts = _figure(rng, times, start, rng.integer(0, 3), speed)
            body_lo, body_hi = lo.amin(dim=1), hi.amax(dim=1)  # (T, 3)
            inside = bool((body_lo >= bound_lo).all() and (body_hi <= bound_hi).all())
            near_eye = ((eyes > body_lo - 0.5) & (eyes < body_hi + 0.5)).all(dim=-1).any()
            hits_box = ((body_lo[:, None] < layout.hi - 1e-6) & (body_hi[:, None] > layout.lo + 1e-6)).all(-1).any()
            gap = (objects[0] - objects[0].clamp(body_lo[:, None], body_hi[:, None])).norm(dim=-1)
            if inside and not bool(near_eye) and not bool(hits_box) and not bool((gap < objects[1]).any()):
                first = len(materials)
                materials += ["fabric", "fabric", "skin"]
                los.append(lo), his.append(hi)
                slots += [first + slot for slot in parts]
                break
    frames = len(times)
    return Walkers(lo=torch.cat(los, dim=1) if los else torch.zeros(frames, 0, 3, dtype=F64),
                   hi=torch.cat(his, dim=1) if his else torch.zeros(frames, 0, 3, dtype=F64),
                   surface=torch.tensor(slots, dtype=torch.long), materials=tuple(materials))
