"""`Sora3RPipeline`: video -> `Reconstruction` (the one public entry for inference).

Per window of the model's clip length T: encode the video with the video VAE, sample the pointmap latent from noise
conditioned on the video latent (rectified-flow Euler steps), decode it with the pointmap VAE and undo the target
normalisation. Videos longer than T are cut into windows that share their first frame with the previous window's
last; each window is brought into the first window's frame by a Sim(3) (Umeyama) fit on that shared frame's points.
Cameras, intrinsics and depth then come from the fused world-frame pointmaps (`sora3r.geometry.recover_cameras`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from sora3r.data.video import adjust_intrinsics, resize_and_crop
from sora3r.geometry import PointmapTarget, apply_sim3, first_camera_world, recover_cameras, umeyama
from sora3r.models.vae import decode_latents, encode_latents
from sora3r.reconstruction import Reconstruction
from sora3r.text import plural
from sora3r.train.data import rgb_to_model
from sora3r.train.export import load_model_folder, sample_pointmap_latent

BUNDLED_MODEL = Path(__file__).parent / "weights" / "sora3r-tiny"


def window_starts(num_frames: int, window: int) -> list[int]:
    """First frame of each window of ``window`` frames covering ``num_frames``; consecutive windows share at least
    one frame (the last window is moved back to end at the last frame)."""
    if num_frames < window:
        raise ValueError(f"the video has {num_frames} frames; the model needs at least {window}")
    starts = list(range(0, num_frames - window + 1, window - 1))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return starts


class Sora3RPipeline:
    """The three models of Sora3R plus their clip geometry.

    Args:
        video_vae, pointmap_vae: diffusers ``AutoencoderKLCogVideoX``.
        transformer: ``sora3r.models.JointLatentTransformer``.
        config: the model folder's ``sora3r.json`` (num_frames, height, width, squash, sampler_steps).
        model_path: the folder the models came from (named in errors), if any.
    """

    def __init__(self, video_vae, pointmap_vae, transformer, config: dict, model_path: Path | None = None):
        self.video_vae = video_vae
        self.pointmap_vae = pointmap_vae
        self.transformer = transformer
        self.config = config
        self.model_path = model_path
        self.target = PointmapTarget(squash=bool(config["squash"]))

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32) -> "Sora3RPipeline":
        """Load a model folder (``None``: the bundled tiny model shipped with the package)."""
        path = BUNDLED_MODEL if path is None else Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such model folder")
        *models, config = load_model_folder(path, device=device, dtype=dtype)
        return cls(*models, config, model_path=path)

    @property
    def clip_shape(self) -> tuple[int, int, int]:
        """``(T, H, W)`` of the clips the model was trained on."""
        return int(self.config["num_frames"]), int(self.config["height"]), int(self.config["width"])

    @property
    def device(self) -> torch.device:
        return self.transformer.device

    @torch.inference_mode()
    def predict_pointmaps(self, frames: torch.Tensor, num_steps: int | None = None,
                          generator: torch.Generator | None = None) -> torch.Tensor:
        """World-frame (= frame-0 camera), unit-mean-distance pointmaps ``float (T, H, W, 3)`` of exactly one window
        ``uint8 (T, H, W, 3)`` at the model's clip shape."""
        steps = int(num_steps or self.config["sampler_steps"])
        video = rgb_to_model(frames[None].to(self.device))
        video_latent = encode_latents(self.video_vae, video)
        pointmap_latent = sample_pointmap_latent(self.transformer, video_latent, steps, generator)
        decoded = decode_latents(self.pointmap_vae, pointmap_latent).float()  # (1, 3, T, H, W)
        points = self.target.decode(decoded[0].permute(1, 2, 3, 0))
        finite = torch.isfinite(points).all(dim=-1)
        if not finite.all():
            # One check per window (a host sync, but after the sampling loop): NaN weights or an overflow in
            # reduced precision poison the Sim(3) fusion and the camera recovery of every later frame.
            source = f"{self.model_path}: " if self.model_path is not None else ""
            raise ValueError(f"{source}the model produced NaN/infinite points ({int((~finite).sum())} of "
                             f"{finite.numel()} pixels): broken weights, or an overflow in {self.transformer.dtype}")
        return points

    @torch.inference_mode()
    def reconstruct(self, frames: torch.Tensor, K: torch.Tensor | None = None, num_steps: int | None = None,
                    seed: int = 0, progress: bool = False) -> Reconstruction:
        """Reconstruct a video.

        Args:
            frames: ``uint8 (N, H0, W0, 3)``, N >= the model's T; resized (short side) and centre-cropped to the
                model's grid.
            K: known ``(3, 3)`` intrinsics in pixels of ``frames``, or ``None`` to estimate a shared focal.
            num_steps: sampling steps (default: the model's ``sampler_steps``).
            seed: seed of the sampling noise (same seed, same output).
        Returns:
            `Reconstruction` at the model's resolution; ``metadata["crop_affine"]`` maps input pixels to it.
        """
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
        window, height, width = self.clip_shape
        frames, affine = resize_and_crop(frames, height, width)
        starts = window_starts(frames.shape[0], window)
        generator = torch.Generator(device=self.device).manual_seed(seed)

        points = torch.empty(frames.shape[0], height, width, 3, device=self.device)
        for start in tqdm(starts, desc="sampling windows", disable=not progress or len(starts) == 1):
            local = self.predict_pointmaps(frames[start:start + window], num_steps, generator)
            if start > 0:
                # Frames [start, filled) are already placed: fit this window onto them.
                shared = slice(0, min(window, filled - start))
                scale, rotation, translation = umeyama(local[shared].reshape(-1, 3),
                                                       points[start:filled].reshape(-1, 3))
                local = apply_sim3(scale, rotation, translation, local)
                local = local[filled - start:]
                start = filled
            points[start:start + local.shape[0]] = local
            filled = start + local.shape[0]

        known_K = None if K is None else adjust_intrinsics(K.double(), affine).float().to(self.device)
        points, cameras = first_camera_world(points, recover_cameras(points, K=known_K))  # c2w[0] = identity
        depth = cameras.depth
        valid = torch.isfinite(depth) & (depth > 0)
        return Reconstruction(
            points=points.cpu(), depth=depth.cpu(), c2w=cameras.c2w.cpu(), K=cameras.K.cpu(), rgb=frames.cpu(),
            valid=valid.cpu(),
            metadata={"method": "sora3r", "scale": "relative (mean point distance 1 in the first window)",
                      "sampler_steps": int(num_steps or self.config["sampler_steps"]), "seed": seed,
                      "windows": starts, "crop_affine": affine.tolist()},
        )
