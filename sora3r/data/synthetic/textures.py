"""Image textures with natural-image statistics for synthetic scenes, and their filtered lookup on rays.

The bank holds square textures of ``BASE`` x ``BASE`` texels with a full mip pyramid:
- 1/f noise: Gaussian fields whose amplitude spectrum falls as ``f^-alpha`` (``alpha`` near 1 is the spectrum of
  natural images, Field 1987 "Relations between the statistics of natural images and the response properties of
  cortical cells"; van der Schaaf & van Hateren 1996), isotropic or stretched along one axis (wood grain),
  grey or with weak colour;
- patterns built on such noise: planks, tiles, wallpaper stripes;
- photographs that ship inside the scikit-image wheel (no download; public domain or CC0, as each image's docstring
  in ``skimage.data`` states), centre-cropped and resized.
The bank is built on the CPU in float64 from fixed seeds, then kept in float32 on each device it is used on.

Lookup is trilinear (bilinear in the two mip levels around the pixel footprint) with mirrored repetition, using only
exactly rounded elementwise ops, gathers and ``frexp``, so a ray's colour does not depend on the batch it is in.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

F64 = torch.float64
BASE = 256  # texels along a side of mip level 0
LEVELS = BASE.bit_length()  # 256, 128, ..., 1
_LEVEL_SIDE = [BASE >> level for level in range(LEVELS)]
_LEVEL_OFFSET = [sum(side * side for side in _LEVEL_SIDE[:level]) for level in range(LEVELS)]
TEXELS = _LEVEL_OFFSET[-1] + 1  # texels of one texture, all levels

# Layout of one surface's image-texture row (written by `scene`, read by `image_albedo`).
IMG_INDEX = 0  # texture of the bank
IMG_DENSITY = 1  # level-0 texels per metre
IMG_ROTATION = slice(2, 4)  # cos, sin of the texture's rotation on the surface
IMG_OFFSET = slice(4, 6)  # texels
IMG_BASE = slice(6, 9)  # colour = base + gain * contrast-stretched texel, per channel
IMG_GAIN = slice(9, 12)
IMG_CONTRAST = 12
IMG_EMISSIVE = 13  # 1: unlit (sky, windows, lamps)
IMG_SIZE = 14


@dataclass(frozen=True)
class TextureSpec:
    """One texture of the bank: ``kind`` is noise | grain | cloud | planks | tiles | stripes | photo."""

    name: str
    kind: str
    alpha: float = 1.0  # amplitude-spectrum exponent of the noise it is made of
    colour: bool = False  # carries its own colours (photos, colour noise) rather than a grey level


PHOTOS = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "rocket", "clock", "text")
BANK: tuple[TextureSpec, ...] = (
    *(TextureSpec(f"noise_{a}", "noise", a) for a in (0.7, 0.85, 1.0, 1.0, 1.15, 1.3)),
    TextureSpec("colour_noise_1.0", "noise", 1.0, colour=True),
    TextureSpec("colour_noise_1.2", "noise", 1.2, colour=True),
    TextureSpec("grain_1.0", "grain", 1.0), TextureSpec("grain_1.3", "grain", 1.3),
    TextureSpec("cloud_1.5", "cloud", 1.5), TextureSpec("cloud_1.8", "cloud", 1.8),
    TextureSpec("planks_32", "planks", 1.2), TextureSpec("planks_64", "planks", 1.2),
    TextureSpec("tiles_4", "tiles", 0.9), TextureSpec("tiles_8", "tiles", 0.9),
    TextureSpec("stripes_16", "stripes", 1.0), TextureSpec("stripes_32", "stripes", 1.0),
    *(TextureSpec(name, "photo", colour=name in ("astronaut", "chelsea", "coffee", "rocket")) for name in PHOTOS),
)


def bank_indices(*kinds: str) -> tuple[int, ...]:
    """Indices into `BANK` of the textures of the given kinds."""
    return tuple(i for i, spec in enumerate(BANK) if spec.kind in kinds)


def pink_noise(size: int, alpha: float, generator: torch.Generator, stretch: float = 1.0) -> torch.Tensor:
    """A periodic Gaussian field ``(size, size)`` float64, zero mean, unit std, amplitude spectrum ``~ f^-alpha``.

    ``stretch > 1`` elongates structures along x (frequencies along x are scaled by ``stretch``, along y by
    ``1 / stretch``).
    """
    white = torch.randn(size, size, generator=generator, dtype=F64)
    freq = torch.fft.fftfreq(size, dtype=F64)
    radius = torch.sqrt((freq[None, :] * stretch) ** 2 + (freq[:, None] / stretch) ** 2)
    gain = torch.where(radius > 0, radius.clamp(min=1e-12) ** -alpha, 0.0)
    field = torch.fft.ifft2(torch.fft.fft2(white) * gain).real
    return (field - field.mean()) / field.std()


def radial_power_slope(images: torch.Tensor, band: tuple[float, float] = (0.02, 0.25)) -> float:
    """Slope of log power against log spatial frequency of grey images ``(..., H, W)``, fitted over ``band``
    (cycles per pixel): about -2 for natural images (amplitude ~ 1/f), 0 for white noise.

    The images are mean-removed and Hann-windowed; the power is averaged over images and over orientations.
    """
    images = images.to(F64)
    h, w = images.shape[-2:]
    window = torch.hann_window(h, periodic=False, dtype=F64)[:, None] * torch.hann_window(w, periodic=False,
                                                                                         dtype=F64)[None, :]
    centred = (images - images.mean(dim=(-2, -1), keepdim=True)) * window
    power = torch.fft.fft2(centred).abs().square().reshape(-1, h, w).mean(dim=0)
    radius = torch.sqrt(torch.fft.fftfreq(h, dtype=F64)[:, None] ** 2 + torch.fft.fftfreq(w, dtype=F64)[None, :] ** 2)
    edges = torch.logspace(math.log10(band[0]), math.log10(band[1]), 13, dtype=F64)
    centres, means = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        ring = (radius >= lo) & (radius < hi)
        if ring.any():
            centres.append(float(radius[ring].mean().log()))
            means.append(float(power[ring].mean().log()))
    x, y = torch.tensor(centres, dtype=F64), torch.tensor(means, dtype=F64)
    return float(((x - x.mean()) * (y - y.mean())).sum() / (x - x.mean()).square().sum())


def _grey(field: torch.Tensor, spread: float = 0.18) -> torch.Tensor:
    """Unit-std field -> grey level in [0, 1] around 0.5, replicated to ``(3, H, W)``."""
    return (0.5 + spread * field).clamp(0.0, 1.0).expand(3, -1, -1)


def _pattern(spec: TextureSpec, generator: torch.Generator) -> torch.Tensor:
    """Planks, tiles or stripes ``(3, BASE, BASE)``: a periodic structure over 1/f detail."""
    index = torch.arange(BASE)
    period = int(spec.name.rsplit("_", 1)[1])
    if spec.kind == "planks":  # boards along x, staggered end joints, grain along the boards
        row = index[:, None] // period
        tone = 0.12 * torch.randn(BASE // period, generator=generator, dtype=F64)[row]
        shift = torch.randint(0, BASE, (BASE // period,), generator=generator)[row]
        joint = ((index[None, :] + shift) % BASE < 2) | (index[:, None] % period < 2)
        value = 0.5 + tone + 0.12 * pink_noise(BASE, spec.alpha, generator, stretch=6.0)
        return torch.where(joint, 0.2, value).clamp(0.0, 1.0).expand(3, -1, -1)
    if spec.kind == "tiles":  # ``period`` x ``period`` square tiles with grout lines
        cells, side = period, BASE // period
        tile = (index[:, None] // side) * cells + index[None, :] // side
        tone = 0.08 * torch.randn(cells * cells, generator=generator, dtype=F64)[tile]
        grout = (index[:, None] % side < 3) | (index[None, :] % side < 3)
        value = 0.55 + tone + 0.06 * pink_noise(BASE, spec.alpha, generator)
        return torch.where(grout, 0.3, value).clamp(0.0, 1.0).expand(3, -1, -1)
    stripe = ((index[None, :] // period) % 2).to(F64).expand(BASE, -1)  # wallpaper: two tones and fine noise
    return (0.4 + 0.2 * stripe + 0.05 * pink_noise(BASE, spec.alpha, generator)).clamp(0.0, 1.0).expand(3, -1, -1)


def _photo(name: str) -> torch.Tensor:
    """A scikit-image sample photograph as ``(3, BASE, BASE)`` float64 in [0, 1] (centre square, area-resized)."""
    from skimage import data  # the images ship in the wheel: nothing is downloaded

    image = torch.from_numpy(getattr(data, name)().copy()).to(F64) / 255.0
    image = image.expand(3, -1, -1) if image.ndim == 2 else image.permute(2, 0, 1)
    side = min(image.shape[-2:])
    top, left = (image.shape[-2] - side) // 2, (image.shape[-1] - side) // 2
    square = image[:, top:top + side, left:left + side]
    return torch.nn.functional.interpolate(square[None], size=(BASE, BASE), mode="area")[0]


def _texture(index: int) -> torch.Tensor:
    """Texture ``index`` of `BANK` at level 0: ``(3, BASE, BASE)`` float64 in [0, 1]."""
    spec = BANK[index]
    generator = torch.Generator().manual_seed(7919 * (index + 1))
    if spec.kind == "photo":
        return _photo(spec.name)
    if spec.kind in ("planks", "tiles", "stripes"):
        return _pattern(spec, generator)
    stretch = 8.0 if spec.kind == "grain" else 1.0
    grey = _grey(pink_noise(BASE, spec.alpha, generator, stretch), 0.25 if spec.kind == "cloud" else 0.18)
    if not spec.colour:
        return grey
    chroma = torch.stack([pink_noise(BASE, spec.alpha, generator) for _ in range(3)])
    return (grey + 0.06 * chroma).clamp(0.0, 1.0)


def _pyramid(texture: torch.Tensor) -> torch.Tensor:
    """All mip levels of ``(3, BASE, BASE)`` (2x2 box filter), flattened to ``(3, TEXELS)``."""
    levels = [texture]
    while levels[-1].shape[-1] > 1:
        levels.append(torch.nn.functional.avg_pool2d(levels[-1][None], 2)[0])
    return torch.cat([level.reshape(3, -1) for level in levels], dim=1)


@functools.lru_cache(maxsize=None)
def _bank_cpu() -> torch.Tensor:
    return torch.cat([_pyramid(_texture(i)) for i in range(len(BANK))], dim=1)


@functools.lru_cache(maxsize=4)
def texture_bank(device: torch.device) -> torch.Tensor:
    """Every texture of `BANK` with its mip pyramid: float32 ``(3, len(BANK) * TEXELS)`` on ``device``; texture
    ``i``, level ``l``, texel ``(y, x)`` is column ``i * TEXELS + offset(l) + y * side(l) + x``."""
    return _bank_cpu().to(device=device, dtype=torch.float32)


@functools.lru_cache(maxsize=4)
def _level_tables(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per mip level: side in texels, 1 / 2**level and the column offset, float32 on ``device``."""
    f32 = dict(dtype=torch.float32, device=device)
    return (torch.tensor(_LEVEL_SIDE, **f32), torch.tensor([0.5**level for level in range(LEVELS)], **f32),
            torch.tensor(_LEVEL_OFFSET, **f32))


def _mirror(x: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """Integer texel coordinates (as floats) folded into [0, side) by mirrored repetition (period 2 side)."""
    period = 2.0 * side
    p = x - period * torch.floor(x / period)
    return torch.where(p >= side, period - 1.0 - p, p)


def _bilinear(bank: torch.Tensor, base: torch.Tensor, level: torch.Tensor, u: torch.Tensor, v: torch.Tensor,
              device: torch.device) -> tuple[torch.Tensor, ...]:
    """Bilinear colour at mip ``level`` (long per ray) of level-0 texel coordinates ``u, v``; ``base`` = the
    texture's first column."""
    sides, scales, offsets = _level_tables(device)
    side, scale = sides[level], scales[level]
    x, y = u * scale - 0.5, v * scale - 0.5  # texel centres sit at half-integer coordinates
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    start = base + offsets[level]
    rows = [start + _mirror(y_i, side) * side for y_i in (y0, y0 + 1.0)]
    cols = [_mirror(x_i, side) for x_i in (x0, x0 + 1.0)]
    corners = [[(row + col).long() for col in cols] for row in rows]
    colour = []
    for channel in bank:
        top = [channel[c] for c in corners[0]]
        bottom = [channel[c] for c in corners[1]]
        upper = top[0] + fx * (top[1] - top[0])
        lower = bottom[0] + fx * (bottom[1] - bottom[0])
        colour.append(upper + fy * (lower - upper))
    return tuple(colour)


def image_albedo(bank: torch.Tensor, row: tuple[torch.Tensor, ...], u: torch.Tensor, v: torch.Tensor,
                 footprint: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Albedo ``(r, g, b)`` of rays from their surfaces' image-texture rows.

    Args:
        bank: `texture_bank` of the rays' device.
        row: ``IMG_SIZE`` tensors ``(N,)``, the texture row of each ray's surface.
        u, v: ``(N,)`` surface coordinates in metres (two axes of the surface's frame).
        footprint: ``(N,)`` metres of surface one pixel covers; the mip level follows it (no aliasing shimmer).
    """
    cos, sin = row[IMG_ROTATION]
    density = row[IMG_DENSITY]
    tu = density * (cos * u - sin * v) + row[IMG_OFFSET][0]
    tv = density * (sin * u + cos * v) + row[IMG_OFFSET][1]
    mantissa, exponent = torch.frexp(density * footprint)  # texels a pixel covers = mantissa * 2**exponent
    top = LEVELS - 1
    fine = (exponent - 1).clamp(0, top).long()
    blend = torch.where((exponent >= 1) & (exponent <= top), 2.0 * mantissa - 1.0, 0.0)
    base = row[IMG_INDEX] * float(TEXELS)
    device = u.device
    near = _bilinear(bank, base, fine, tu, tv, device)
    far = _bilinear(bank, base, (fine + 1).clamp(max=top), tu, tv, device)
    contrast = row[IMG_CONTRAST]
    colour = []
    for i, (a, b) in enumerate(zip(near, far)):
        texel = a + blend * (b - a)
        stretched = ((texel - 0.5) * contrast + 0.5).clamp(0.0, 1.0)
        colour.append(row[IMG_BASE][i] + row[IMG_GAIN][i] * stretched)
    return tuple(colour)
