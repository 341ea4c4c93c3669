"""Photometric augmentation of rendered clips, so synthetic RGB looks like a phone camera's: defocus and motion
blur, exposure (with auto-exposure drift), white balance, vignetting, sensor noise, a tone curve, saturation and
H.264-like block compression with chroma subsampling. Only the RGB changes; geometry targets stay exact.

The parameters of a clip are drawn on the CPU in float64 from its seed alone (`sample_photometric`); the images are
processed batched on any device (`augment_rgb`) with elementwise ops, gathers and sums in a fixed order only (sensor
noise is read from a fixed table at an offset drawn per clip, not drawn from a device generator), so a clip's
augmented frames are the same in any batch and, up to float rounding, on CPU and CUDA.
"""

from __future__ import annotations

import functools
import math

import torch

F64 = torch.float64

# Layout of one clip's parameter row.
EXPOSURE, DRIFT, TONE, WHITE_BALANCE, BLACK, VIGNETTE = 0, 1, 2, slice(3, 6), 6, 7
SHOT_NOISE, READ_NOISE, MOTION_BLUR, QUANT_STEP, CHROMA_420, SATURATION, NOISE_KEY = 8, 9, 10, 11, 12, 13, 14
DEFOCUS = 15  # strength of the defocus blur, 0 (sharp) .. 1
NUM_PARAMS = 16
_BLOCK = 4  # block side of the compression (H.264's core transform)
_SALT = 0x5DEECE66D  # separates the augmentation's generator from the scene's, which uses the bare seed
_NOISE_TABLE = 1 << 22  # samples of the sensor-noise table


def sample_photometric(seed: int) -> torch.Tensor:
    """The augmentation parameters ``(NUM_PARAMS,)`` float64 of the clip of ``seed``.

    Ranges: auto exposure to a mean grey of 0.25-0.6, drifting up to +-20 % over the clip; tone curve
    ``x + k x (1 - x)`` with ``k`` in [-0.35, 0.35]; white-balance gains +-15 % (mean 1); black level 0-0.04;
    vignetting falloff 0-0.6 at the corners; shot noise variance 0-0.003 x and read noise 0.002-0.012 (std); defocus
    strength 0.3-1 (30 % of clips);
    motion blur over 10-80 % of the frame interval (60 %); block compression with step 2-24 levels (50 %), chroma
    subsampled (50 %); saturation 0.6-1.3.
    """
    generator = torch.Generator().manual_seed((seed * 1_000_003 + _SALT) % 2**63)

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=F64))

    row = torch.zeros(NUM_PARAMS, dtype=F64)
    row[EXPOSURE] = uniform(0.25, 0.6)
    row[DRIFT] = uniform(-0.2, 0.2)
    row[TONE] = uniform(-0.35, 0.35)
    balance = torch.tensor([uniform(0.85, 1.15) for _ in range(3)], dtype=F64)
    row[WHITE_BALANCE] = balance / balance.mean()
    row[BLACK] = uniform(0.0, 0.04)
    row[VIGNETTE] = uniform(0.0, 0.6)
    row[SHOT_NOISE] = uniform(0.0, 0.003)
    row[READ_NOISE] = uniform(0.002, 0.012)
    row[MOTION_BLUR] = uniform(0.1, 0.8) if uniform(0, 1) < 0.6 else 0.0
    row[QUANT_STEP] = math.exp(uniform(math.log(2.0), math.log(24.0))) / 255.0 if uniform(0, 1) < 0.5 else 0.0
    row[CHROMA_420] = float(uniform(0, 1) < 0.5)
    row[SATURATION] = uniform(0.6, 1.3)
    row[NOISE_KEY] = uniform(0, 1)  # where the clip reads the noise table
    row[DEFOCUS] = uniform(0.3, 1.0) if uniform(0, 1) < 0.3 else 0.0
    return row


@functools.lru_cache(maxsize=4)
def _noise_table(device: torch.device) -> torch.Tensor:
    """A fixed table of ``_NOISE_TABLE`` standard-normal float32 samples (drawn once on the CPU, same on every
    device); a clip reads it from its own offset on."""
    generator = torch.Generator().manual_seed(20_251_130)
    return torch.randn(_NOISE_TABLE, generator=generator).to(device)


def _gaussian(start: torch.Tensor, count: int, device: torch.device) -> torch.Tensor:
    """``(B, count)`` standard-normal samples: ``count`` consecutive table entries per clip, from ``start (B,)``
    (CPU, a fraction in [0, 1) of the table; wrapping around when ``count`` is larger than the table)."""
    table = _noise_table(device)
    if count <= _NOISE_TABLE:
        first = [int(f * (_NOISE_TABLE - count)) for f in start.tolist()]
        return torch.stack([table[i:i + count] for i in first])
    index = (torch.tensor([int(f * _NOISE_TABLE) for f in start.tolist()], device=device)[:, None]
             + torch.arange(count, device=device)[None]) % _NOISE_TABLE
    return table[index]


def _defocus(frames: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Blur ``frames (B, T, 3, H, W)`` towards a 2x2 box-filtered, bilinearly re-expanded copy (a blur of about
    0.8 px sigma) by ``strength (B,)`` in [0, 1]."""
    B, T, C, H, W = frames.shape
    flat = frames.reshape(B * T, C, H, W)
    soft = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(flat, 2, ceil_mode=True), size=(H, W),
                                           mode="bilinear", align_corners=False).view_as(frames)
    return frames + strength.view(B, 1, 1, 1, 1) * (soft - frames)


def _motion_blur(frames: torch.Tensor, fraction: torch.Tensor, points: torch.Tensor, c2w: torch.Tensor,
                 K: torch.Tensor, taps: int = 3) -> torch.Tensor:
    """Mean of ``taps`` copies of ``frames (B, T, 3, H, W)`` shifted along the image motion of the centre pixel
    between neighbouring frames, over ``fraction (B,)`` of the frame interval (the shutter time); bilinear, edges
    clamped."""
    B, T, C, H, W = frames.shape
    if T < 2:
        return frames
    world = points[:, :, H // 2, W // 2]  # (B, T, 3)
    other = torch.cat([torch.arange(1, T), torch.tensor([T - 2])]).to(frames.device)
    sign = torch.cat([torch.ones(T - 1), -torch.ones(1)]).to(frames.device, frames.dtype)
    R, centre = c2w[:, other, :3, :3], c2w[:, other, :3, 3]
    rel = [world[..., j] - centre[..., j] for j in range(3)]
    cam = [rel[0] * R[..., 0, i] + rel[1] * R[..., 1, i] + rel[2] * R[..., 2, i] for i in range(3)]  # R^T (x - c)
    z = cam[2].clamp(min=1e-3)
    # pixel motion of the centre: its projection in the neighbour frame minus the principal point, in the
    # normalised coordinates of grid_sample (align_corners: -1 and 1 are the outer pixel centres)
    du = sign * (K[:, None, 0, 0] * cam[0] / z) * (2.0 / max(W - 1, 1))
    dv = sign * (K[:, None, 1, 1] * cam[1] / z) * (2.0 / max(H - 1, 1))
    base = torch.stack(torch.meshgrid(torch.linspace(-1.0, 1.0, W, device=frames.device, dtype=frames.dtype),
                                      torch.linspace(-1.0, 1.0, H, device=frames.device, dtype=frames.dtype),
                                      indexing="xy"), dim=-1)[None]  # (1, H, W, 2): x, y
    motion = torch.stack([du, dv], dim=-1).view(B * T, 1, 1, 2)
    flat = frames.reshape(B * T, C, H, W)
    total = None
    for k in range(taps):
        s = ((k / (taps - 1) - 0.5) * fraction).repeat_interleave(T).view(B * T, 1, 1, 1)
        shifted = torch.nn.functional.grid_sample(flat, base + s * motion, mode="bilinear", padding_mode="border",
                                                  align_corners=True)
        total = shifted if total is None else total.add_(shifted)
    return (total * (1.0 / taps)).view_as(frames)


def _core(blocks: torch.Tensor, dim: int, inverse: bool) -> torch.Tensor:
    """H.264's 4x4 integer core transform ``C = [[1,1,1,1], [2,1,-1,-2], [1,-1,-1,1], [1,-2,2,-1]]`` (forward:
    ``C x``; inverse: ``C^T x``) along ``dim`` of ``(..., 4, 4)`` blocks, as butterflies of adds and doublings."""
    x0, x1, x2, x3 = blocks.unbind(dim)
    if inverse:
        a, b, c, d = x0 + x2, x0 - x2, 2.0 * x1 + x3, x1 - 2.0 * x3
        out = (a + c, b + d, b - d, a - c)
    else:
        s03, d03, s12, d12 = x0 + x3, x0 - x3, x1 + x2, x1 - x2
        out = (s03 + s12, 2.0 * d03 + d12, s03 - s12, d03 - 2.0 * d12)
    return torch.stack(out, dim=dim)


def _compress(luma: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """Quantise the 4x4 block transform coefficients of ``luma (B, T, H, W)`` (H.264's core transform, taken
    orthonormal) with step ``step (B,)`` (> 0) growing with frequency (``step (1 + (u + v) / 2)``); the frame is
    edge-padded to whole blocks and cropped back."""
    B, T, H, W = luma.shape
    ph, pw = -H % _BLOCK, -W % _BLOCK
    padded = torch.nn.functional.pad(luma.reshape(B * T, 1, H, W), (0, pw, 0, ph), mode="replicate")
    hb, wb = (H + ph) // _BLOCK, (W + pw) // _BLOCK
    blocks = padded.reshape(B, T, hb, _BLOCK, wb, _BLOCK).transpose(3, 4)  # (B, T, hb, wb, 4, 4)
    coeff = _core(_core(blocks, -2, inverse=False), -1, inverse=False)  # C X C^T
    norm = torch.tensor([4.0, 10.0, 4.0, 10.0], device=luma.device, dtype=luma.dtype)  # C C^T = diag(norm)
    freq = torch.arange(_BLOCK, device=luma.device, dtype=luma.dtype)
    scale = (norm[:, None] * norm[None, :]).sqrt()
    q = step.view(B, 1, 1, 1, 1, 1) * (1.0 + (freq[:, None] + freq[None, :]) * 0.5) * scale
    kept = torch.round(coeff / q).mul_(q / (norm[:, None] * norm[None, :]))  # D^-1 Y D^-1, since C^-1 = C^T D^-1
    back = _core(_core(kept, -2, inverse=True), -1, inverse=True)  # C^T Z C
    return back.transpose(3, 4).reshape(B, T, H + ph, W + pw)[..., :H, :W]


def _chroma_420(chroma: torch.Tensor) -> torch.Tensor:
    """Average ``chroma (B, T, H, W)`` over 2x2 cells and repeat it back (4:2:0 subsampling); odd edges stay."""
    B, T, H, W = chroma.shape
    h, w = H - H % 2, W - W % 2
    cells = chroma[..., :h, :w].reshape(B, T, h // 2, 2, w // 2, 2)
    mean = (cells[:, :, :, 0, :, 0] + cells[:, :, :, 0, :, 1] + cells[:, :, :, 1, :, 0] + cells[:, :, :, 1, :, 1]) \
        * 0.25
    sub = chroma.clone()
    sub[..., :h, :w] = mean[:, :, :, None, :, None].expand(-1, -1, -1, 2, -1, 2).reshape(B, T, h, w)
    return sub


def _auto_exposure(x: torch.Tensor, target: torch.Tensor, grid: int = 6) -> torch.Tensor:
    """Per-clip gain ``(B,)`` that brings the mean grey of a ``grid`` x ``grid`` set of pixels of the middle frame
    of ``x (B, T, 3, H, W)`` to ``target (B,)`` (within 1/3 .. 4), summed in a fixed order."""
    B, T, _, H, W = x.shape
    total = torch.zeros(B, dtype=x.dtype, device=x.device)
    for i in range(grid):
        for j in range(grid):
            pixel = x[:, T // 2, :, (2 * i + 1) * H // (2 * grid), (2 * j + 1) * W // (2 * grid)]
            total = total + (pixel[:, 0] + pixel[:, 1] + pixel[:, 2])
    return (target / (total * (1.0 / (3 * grid * grid))).clamp(min=0.02)).clamp(1.0 / 3.0, 4.0)


def _sensor(x: torch.Tensor, params: torch.Tensor, noise_start: torch.Tensor) -> torch.Tensor:
    """Auto exposure with drift, white balance, vignetting, black level and signal-dependent noise on
    ``x (B, T, 3, H, W)`` (in place); ``noise_start (B,)`` (CPU): where each clip reads the noise table."""
    B, T, C, H, W = x.shape
    p = lambda i: params[:, i].view(B, 1, 1, 1, 1)  # noqa: E731
    ramp = torch.linspace(-1.0, 1.0, T, device=x.device, dtype=x.dtype).view(1, T, 1, 1, 1) if T > 1 else 0.0
    exposure = _auto_exposure(x, params[:, EXPOSURE]).view(B, 1, 1, 1, 1)
    gain = exposure * (1.0 + p(DRIFT) * ramp) * params[:, WHITE_BALANCE].view(B, 1, 3, 1, 1)
    v = (torch.arange(H, device=x.device, dtype=x.dtype) - (H - 1) / 2) / ((H - 1) / 2 + 1e-9)
    u = (torch.arange(W, device=x.device, dtype=x.dtype) - (W - 1) / 2) / ((W - 1) / 2 + 1e-9)
    radius2 = (v[:, None] * v[:, None] + u[None, :] * u[None, :]) * 0.5  # 1 in the corners
    x = x.mul_(gain * (1.0 - p(VIGNETTE) * radius2)).clamp_(0.0, 1.0)
    x = x.mul_(1.0 - p(BLACK)).add_(p(BLACK))
    noise = _gaussian(noise_start, T * C * H * W, x.device).view(B, T, C, H, W)
    sigma = (x * p(SHOT_NOISE)).add_(p(READ_NOISE) * p(READ_NOISE)).sqrt_()
    return x.addcmul_(sigma, noise).clamp_(0.0, 1.0)


def _on_clips(x: torch.Tensor, active: torch.Tensor, op) -> torch.Tensor:
    """``x`` with ``op(indices, x[indices])`` written in place for the clips where ``active`` (CPU bool ``(B,)``)
    holds; the other clips are untouched and cost nothing."""
    chosen = active.nonzero().squeeze(1)
    if len(chosen) == len(active):
        return op(chosen.to(x.device), x)
    if len(chosen):
        index = chosen.to(x.device)
        x[index] = op(index, x[index])
    return x


def augment_rgb(rgb: torch.Tensor, params: torch.Tensor, points: torch.Tensor, c2w: torch.Tensor,
                K: torch.Tensor) -> torch.Tensor:
    """Augmented ``rgb`` uint8 ``(B, T, H, W, 3)``.

    Args:
        rgb: rendered clips, uint8 ``(B, T, H, W, 3)`` on any device.
        params: ``(B, NUM_PARAMS)`` float64 rows of `sample_photometric`, on the CPU (they decide which clips get
            blur and compression without a device sync).
        points, c2w, K: ``(B, T, H, W, 3)`` world points, ``(B, T, 4, 4)`` poses and ``(B, 3, 3)`` intrinsics on
            ``rgb``'s device: the camera motion that the motion blur follows.

    Returns a new uint8 tensor; the inputs are not modified.
    """
    B = rgb.shape[0]
    dev = params.to(device=rgb.device, dtype=torch.float32)
    x = rgb.permute(0, 1, 4, 2, 3).to(torch.float32) * (1.0 / 255.0)  # (B, T, 3, H, W)
    x = _on_clips(x, params[:, DEFOCUS] > 0, lambda i, xs: _defocus(xs, dev[i, DEFOCUS]))
    x = _on_clips(x, params[:, MOTION_BLUR] > 0, lambda i, xs: _motion_blur(xs, dev[i, MOTION_BLUR], points[i],
                                                                             c2w[i], K[i]))
    x = _sensor(x, dev, params[:, NOISE_KEY])
    x = x.addcmul_(x * (1.0 - x), dev[:, TONE].view(B, 1, 1, 1, 1)).clamp_(0.0, 1.0)  # tone curve
    luma = 0.299 * x[:, :, 0] + 0.587 * x[:, :, 1] + 0.114 * x[:, :, 2]  # ITU-R BT.601
    saturation = dev[:, SATURATION].view(B, 1, 1, 1)
    cb, cr = (x[:, :, 2] - luma) * saturation, (x[:, :, 0] - luma) * saturation
    luma = _on_clips(luma, params[:, QUANT_STEP] > 0, lambda i, ys: _compress(ys, dev[i, QUANT_STEP]))
    subsample = params[:, CHROMA_420] > 0
    cb, cr = (_on_clips(c, subsample, lambda i, cs: _chroma_420(cs)) for c in (cb, cr))
    red, blue = luma + cr, luma + cb
    green = (luma - 0.299 * red - 0.114 * blue) * (1.0 / 0.587)
    out = torch.stack([red, green, blue], dim=-1).clamp_(0.0, 1.0)
    return out.mul_(255.0).add_(0.5).floor_().to(torch.uint8)
