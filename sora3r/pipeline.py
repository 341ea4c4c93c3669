"""`Sora3RPipeline`: video -> `Reconstruction` (the one public entry for inference), a diffusers `DiffusionPipeline`.

Per window of the model's clip length T: encode the video with the video VAE, sample the pointmap latent from noise
conditioned on the video latent (rectified-flow Euler steps over the registered scheduler's flow times), decode it with
the pointmap VAE and undo the target normalisation. With ``num_samples = N > 1`` each window draws N samples in one
batch: each is aligned to their mean by a robust Sim(3), the pointmaps are the mean of the aligned samples and their
per-pixel spread gives a confidence in (0, 1] (`combine_samples`). Videos longer than T are cut into windows that share
``overlap`` frames with the previous one. Each later window is sampled conditioned on the frames it shares with those
already placed (their points re-expressed in the window's own frame and encoded: the first ``1 + 4k`` of them, whole
latent frames, given to the transformer's known-frame inputs, or for a transformer without them fixed along the flow
path by `euler_sample`'s ``known``), then brought into the first window's frame by a robust Sim(3) fit on all the
frames it shares (`sora3r.geometry.stitch`), and the shared frames are cross-faded. Cameras, intrinsics and depth
then come from the fused world-frame pointmaps (`sora3r.geometry.recover_cameras_streamed`, weighted by the
confidence). The fused pointmaps and confidence are written window by window to file-backed stores
(`sora3r.offload.FrameStore`, in ``TMPDIR``) and read back a chunk of frames at a time, so memory does not grow with
the video's length (docs/memory.md); a video of one window keeps them on the device.

Model folder (diffusers' pipeline layout, written by `save_pretrained`): ``model_index.json`` (component classes, clip
shape ``num_frames`` / ``height`` / ``width``, ``squash``, ``sampler_steps``), ``video_vae/`` and ``pointmap_vae/``
(diffusers ``AutoencoderKLCogVideoX``), ``transformer/`` (`sora3r.models.JointLatentTransformer`) and ``scheduler/``
(diffusers ``FlowMatchEulerDiscreteScheduler``, whose ``shift`` sets the flow times).
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

import diffusers
import torch
from diffusers import AutoencoderKLCogVideoX, DiffusionPipeline, FlowMatchEulerDiscreteScheduler
from diffusers.utils import logging as diffusers_logging
from tqdm import tqdm

from sora3r.data.video import adjust_intrinsics, resize_and_crop
from sora3r.diffusion.sampler import DEFAULT_NUM_STEPS, euler_sample
from sora3r.geometry import PointmapTarget, apply_sim3, first_camera_world, recover_cameras_streamed
from sora3r.geometry.stitch import blend_shared, default_overlap, robust_sim3, shared_in_window_frame, window_starts
from sora3r.models.fast import FastPaths, attention_context, compile_modules, set_channels_last, set_fused_qkv
from sora3r.models.inputs import rgb_to_model
from sora3r.models.transformer import JointLatentTransformer
from sora3r.models.vae import check_num_frames, decode_latents, encode_latents, encode_leading_latents
from sora3r.offload import FrameStore
from sora3r.types import Reconstruction

BUNDLED_MODEL = Path(__file__).parent / "weights" / "sora3r-tiny"
# The files of a model folder: what `from_pretrained` requires and what a Hub download fetches.
MODEL_FILES = ("model_index.json", "video_vae/config.json", "pointmap_vae/config.json", "transformer/config.json",
               "scheduler/scheduler_config.json")
_HUB_FILES = ["model_index.json", "*/*.json", "*/*.safetensors"]
_HUB_OPTIONS = ("cache_dir", "force_download", "proxies", "local_files_only", "token", "revision")
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")  # owner/name, as the Hugging Face Hub spells repository ids
# Spread of the aligned samples (see `combine_samples`) at which the confidence is 1/2:
# confidence = 1 / (1 + spread / SPREAD_AT_HALF_CONFIDENCE). 0.02 is about the median pixel's spread of the bundled
# model at 4 samples on held-out synthetic clips (per-clip medians 0.011-0.118, their median 0.019).
SPREAD_AT_HALF_CONFIDENCE = 0.02


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None


def check_model_folder(folder: Path) -> None:
    """Raise a one-line error unless ``folder`` holds a sora3r model folder (checked before any weight is read).

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        ValueError: a file of :data:`MODEL_FILES` is missing, ``model_index.json`` describes another pipeline, or
            ``transformer/`` holds another model than the joint-latent transformer.
    """
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such model folder")
    missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(f"{folder}: not a sora3r model folder (missing {', '.join(missing)})")
    index = _read_json(folder / "model_index.json")
    if index.get("_class_name") != Sora3RPipeline.__name__:
        raise ValueError(f"{folder}: not a sora3r model folder (model_index.json describes a "
                         f"{index.get('_class_name')})")
    expected = JointLatentTransformer.__name__
    for found in (_read_json(folder / "transformer" / "config.json").get("_class_name"),
                  (index.get("transformer") or [None, None])[-1]):
        if found != expected:
            raise ValueError(f"{folder / 'transformer'}: not a sora3r joint-latent transformer (found {found})")


def model_window(folder: Path | None = None) -> int:
    """Frames per window ``T`` of a local model folder (``None``: the bundled model), read from its
    ``model_index.json`` without loading any weight, so options that depend on it are checked before any work.

    Raises:
        FileNotFoundError, ValueError: as `check_model_folder`.
    """
    folder = BUNDLED_MODEL if folder is None else Path(folder)
    check_model_folder(folder)
    return int(_read_json(folder / "model_index.json")["num_frames"])


def combine_samples(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pointmaps and a per-pixel confidence from N samples of one window (benchmarks/bench_confidence.py measured the
    choices; README, "Confidence").

    Each sample is first brought onto the samples' mean by the robust Sim(3) of window stitching
    (`sora3r.geometry.stitch.robust_sim3`): samples that differ as a whole (scale, a slight turn) differ in a way the
    Sim(3)-aligned point error and the per-frame camera fit ignore, and without this step that disagreement, largest
    far away, swamps the local one. The spread is then the norm of the aligned samples' per-pixel standard deviation
    (in the window's scale-free points, mean distance 1 from the first camera), and the confidence ``1 / (1 + spread /
    SPREAD_AT_HALF_CONFIDENCE)``. Of the spreads measured (raw or aligned samples; metric, squashed, latent, relative
    to the distance or log-radial), this one ranked the Sim(3)-aligned point error best on held-out clips.

    Args:
        samples: ``float (N, T, H, W, 3)``, N >= 2, finite scale-free world-frame pointmaps of one window.
    Returns:
        ``(points float (T, H, W, 3), confidence float (T, H, W) in (0, 1])``: the mean of the aligned samples and
        its confidence.
    Raises:
        ValueError: fewer than 2 samples, or a shape other than ``(N, T, H, W, 3)``.
    """
    if samples.ndim != 5 or samples.shape[0] < 2 or samples.shape[-1] != 3:
        raise ValueError(f"combine_samples: need samples (N >= 2, T, H, W, 3), got {tuple(samples.shape)}")
    target = samples.mean(0).reshape(-1, 3).double()
    aligned = torch.stack([apply_sim3(*(value.to(sample.dtype) for value in
                                        robust_sim3(sample.reshape(-1, 3).double(), target)), sample)
                           for sample in samples])
    points = aligned.mean(0)
    spread = aligned.std(0, unbiased=False).norm(dim=-1)
    return points, 1.0 / (1.0 + spread / SPREAD_AT_HALF_CONFIDENCE)


class Sora3RPipeline(DiffusionPipeline):
    """The three models of Sora3R, the scheduler that sets the sampling times, and the clip geometry.

    Args:
        video_vae, pointmap_vae: diffusers ``AutoencoderKLCogVideoX`` (one architecture, separate weights).
        transformer: `sora3r.models.JointLatentTransformer`.
        scheduler: diffusers ``FlowMatchEulerDiscreteScheduler``; its ``shift`` bends the flow times of sampling.
        num_frames, height, width: the clip shape ``(T, H, W)`` the models were trained on (T = 8k + 1).
        squash: whether the pointmap target is radially squashed (`sora3r.geometry.target.PointmapTarget`).
        sampler_steps: default number of Euler steps.
    """

    model_cpu_offload_seq = "video_vae->transformer->pointmap_vae"

    def __init__(self, video_vae: AutoencoderKLCogVideoX, pointmap_vae: AutoencoderKLCogVideoX,
                 transformer: JointLatentTransformer, scheduler: FlowMatchEulerDiscreteScheduler, num_frames: int = 17,
                 height: int = 64, width: int = 96, squash: bool = True, sampler_steps: int = DEFAULT_NUM_STEPS):
        super().__init__()
        check_num_frames(num_frames)
        if sampler_steps < 1:
            raise ValueError(f"sampler_steps must be >= 1, got {sampler_steps}")
        self.register_modules(video_vae=video_vae, pointmap_vae=pointmap_vae, transformer=transformer,
                              scheduler=scheduler)
        self.register_to_config(num_frames=num_frames, height=height, width=width, squash=squash,
                                sampler_steps=sampler_steps)
        self.fast_paths = FastPaths()

    def enable_fast_paths(self, fast_paths: FastPaths) -> "Sora3RPipeline":
        """Switch on opt-in GPU fast paths (`sora3r.models.fast.FastPaths`: SDPA backend, fused QKV projections,
        channels-last VAEs, ``torch.compile``); outputs stay those of the eager path within the dtype's rounding.
        Channels-last, fused QKV and the attention backend can be switched back off by another call; compilation
        cannot. Returns the pipeline."""
        set_fused_qkv(self.transformer.transformer, fast_paths.fuse_qkv, self.fast_paths.fuse_qkv)
        set_channels_last([self.video_vae, self.pointmap_vae], fast_paths.channels_last)
        if fast_paths.compile is not None and fast_paths.compile != self.fast_paths.compile:
            compile_modules([self.transformer.transformer], fast_paths.compile)
            compile_modules([self.video_vae.encoder, self.video_vae.decoder, self.pointmap_vae.encoder,
                             self.pointmap_vae.decoder], fast_paths.vae_mode)
        self.fast_paths = fast_paths
        return self

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None = None,
                        device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                        **kwargs) -> "Sora3RPipeline":
        """Load a model folder written by `save_pretrained`, or one from the Hugging Face Hub where a hub is reachable.

        Args:
            pretrained_model_name_or_path: a local folder; ``None`` for the bundled tiny model shipped with the
                package; or a Hub id ``owner/name`` that is not a local path (fetched as `download` does it).
            device: where the models go (``"cpu"``, ``"cuda"``, ...).
            dtype: dtype of the weights in memory (default float32; the bundled model is stored in bfloat16);
                diffusers' older name ``torch_dtype`` is accepted too.
            kwargs: passed on to ``diffusers.DiffusionPipeline.from_pretrained`` (e.g. ``revision``, ``cache_dir``,
                ``local_files_only``).
        Raises:
            FileNotFoundError: no such folder (nor, for a name of the form ``owner/name``, such a model on the Hub or
                in its cache).
            ValueError: the folder is not a sora3r model folder (see `check_model_folder`).
        """
        if pretrained_model_name_or_path is None:
            folder = BUNDLED_MODEL
        else:
            name = os.fspath(pretrained_model_name_or_path)
            is_hub_id = not os.path.exists(name) and _HUB_ID.fullmatch(name) is not None
            folder = Path(cls.download(name, **kwargs) if is_hub_id else name)
        check_model_folder(folder)
        if dtype is None and kwargs.get("torch_dtype") is None:
            dtype = torch.float32
        bars_on = diffusers_logging.is_progress_bar_enabled()
        if bars_on:  # no "Loading pipeline components" bar: loading takes a fraction of a second
            diffusers_logging.disable_progress_bar()
        try:
            pipeline = super().from_pretrained(str(folder), dtype=dtype, **kwargs)
        finally:
            if bars_on:
                diffusers_logging.enable_progress_bar()
        return pipeline.to(device)

    @classmethod
    def download(cls, pretrained_model_name: str, **kwargs) -> str:
        """The local copy of Hub repository ``owner/name`` (fetched into, or found in, the Hugging Face cache).

        Takes the place of ``DiffusionPipeline.download``, which accepts components only from diffusers' own
        libraries unless their source file ships in the repository; sora3r's transformer comes from this package.
        ``kwargs``: ``cache_dir``, ``revision``, ``local_files_only``, ``token``, ... as in ``snapshot_download``.

        Raises:
            FileNotFoundError: the Hub cannot be reached or has no such repository, and the cache lacks it.
        """
        from huggingface_hub import snapshot_download

        options = {key: kwargs[key] for key in _HUB_OPTIONS if kwargs.get(key) is not None}
        try:
            return snapshot_download(pretrained_model_name, allow_patterns=_HUB_FILES, **options)
        except (OSError, ValueError) as error:  # network, HTTP, cache and repository-id errors of huggingface_hub
            reason = str(error).splitlines()[0]
            raise FileNotFoundError(f"{pretrained_model_name}: no such model folder, nor a model on the Hugging Face "
                                    f"Hub or in its cache ({reason})") from None

    @property
    def clip_shape(self) -> tuple[int, int, int]:
        """``(T, H, W)`` of the clips the model was trained on."""
        return int(self.config.num_frames), int(self.config.height), int(self.config.width)

    @property
    def target(self) -> PointmapTarget:
        """The normalisation the pointmap VAE decodes into (frame-0 world, unit mean distance, optional squash)."""
        return PointmapTarget(squash=bool(self.config.squash))

    def _steps(self, num_steps: int | None) -> int:
        """``num_steps``, or the config's ``sampler_steps`` when it is ``None`` (0 stays 0, which the sampler refuses)."""
        return int(self.config.sampler_steps if num_steps is None else num_steps)

    def sample_pointmap_latent(self, video_latent: torch.Tensor, num_steps: int | None = None,
                               generator: torch.Generator | None = None,
                               known: torch.Tensor | None = None) -> torch.Tensor:
        """Scaled pointmap latent ``(B, C, t, h, w)`` for a scaled video latent, by Euler steps (no host syncs) over
        the registered scheduler's flow times; ``num_steps`` defaults to the config's ``sampler_steps``; ``known``
        (the clean latent ``(1, C, L, h, w)`` of the first latent frames) conditions the sample on them: through the
        transformer's own known-frame inputs when it has them (trained for it, `JointLatentTransformer`), else by
        replacement along the flow path (`euler_sample`)."""
        steps = self._steps(num_steps)
        dtype = self.transformer.dtype
        known = None if known is None else known.to(dtype)
        model, replaced = self.transformer, known
        if known is not None and self.transformer.config.known_frame_inputs:
            model, replaced = functools.partial(self.transformer, known=known), None
        with attention_context(self.fast_paths.attention):
            return euler_sample(model, video_latent.to(dtype), steps, generator, self.scheduler, known=replaced)

    @torch.inference_mode()
    def sample_pointmaps(self, frames: torch.Tensor, num_steps: int | None = None,
                         generator: torch.Generator | None = None, num_samples: int = 1,
                         known_points: torch.Tensor | None = None) -> torch.Tensor:
        """``num_samples`` world-frame (= frame-0 camera), unit-mean-distance pointmaps ``float (N, T, H, W, 3)`` of
        exactly one window ``uint8 (T, H, W, 3)`` at the model's clip shape, drawn in one batch from independent initial
        noise (the Euler sampler adds no noise after it).

        ``known_points``, ``float (1 + 4k, H, W, 3)`` pointmaps of the window's first frames in that same frame and
        scale (e.g. `sora3r.geometry.stitch.shared_in_window_frame` of frames already reconstructed), conditions
        the samples on them: they are encoded with the pointmap VAE and their latent frames are known to the sampler.

        Raises:
            ValueError: ``num_samples < 1``, ``known_points`` of another shape or not ``1 + 4k`` frames with
                ``1 + 4k < T``, or the model produced NaN or infinite points (broken weights, or an overflow).
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        video = rgb_to_model(frames[None].to(self.device))
        video_latent = encode_latents(self.video_vae, video).expand(num_samples, -1, -1, -1, -1)
        known = None
        if known_points is not None:
            if known_points.shape[1:] != frames.shape[1:] or not 0 < known_points.shape[0] < frames.shape[0]:
                raise ValueError(f"known_points {tuple(known_points.shape)} must be (S, H, W, 3) with S < "
                                 f"{frames.shape[0]} frames of {tuple(frames.shape[1:3])}")
            target = self.target.encode_scale_free(known_points.float().to(self.device))
            known = encode_leading_latents(self.pointmap_vae, target.permute(3, 0, 1, 2)[None])
        pointmap_latent = self.sample_pointmap_latent(video_latent, num_steps, generator, known)
        decoded = decode_latents(self.pointmap_vae, pointmap_latent).float().permute(0, 2, 3, 4, 1)  # (N, T, H, W, 3)
        samples = self.target.decode(decoded)
        finite = torch.isfinite(samples).all(dim=-1).all(dim=0)
        if not finite.all():
            # One check per window (a host sync, but after the sampling loop): NaN weights or an overflow in
            # reduced precision poison the Sim(3) fusion and the camera recovery of every later frame.
            source = f"{self.name_or_path}: " if self.name_or_path else ""
            raise ValueError(f"{source}the model produced NaN/infinite points ({int((~finite).sum())} of "
                             f"{finite.numel()} pixels): broken weights, or an overflow in {self.transformer.dtype}")
        return samples

    @torch.inference_mode()
    def predict_pointmaps(self, frames: torch.Tensor, num_steps: int | None = None,
                          generator: torch.Generator | None = None, num_samples: int = 1,
                          known_points: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Pointmaps of exactly one window ``uint8 (T, H, W, 3)`` at the model's clip shape (`sample_pointmaps`, also
        for ``known_points``).

        Returns:
            ``(points float (T, H, W, 3), confidence float (T, H, W) or None)``: with ``num_samples > 1`` the mean of
            that many samples and their confidence (`combine_samples`); with one sample, that sample and ``None``.
        Raises:
            ValueError: as `sample_pointmaps`.
        """
        samples = self.sample_pointmaps(frames, num_steps, generator, num_samples, known_points)
        return (samples[0], None) if num_samples == 1 else combine_samples(samples)

    def _fused_pointmaps(self, frames: torch.Tensor, starts: list[int], num_steps: int | None, seed: int,
                         num_samples: int, progress: bool,
                         condition_overlap: bool) -> tuple[FrameStore, FrameStore | None]:
        """Pointmaps ``(N, H, W, 3)`` of all frames in the first window's frame, and their confidence ``(N, H, W)``
        (``None`` with one sample), window by window (see the module doc), written to file-backed stores: what the
        loop holds does not grow with the video's length. A video of one window keeps them on the device."""
        window, height, width = self.clip_shape
        generator = torch.Generator(device=self.device).manual_seed(seed)
        in_memory = len(starts) == 1  # one window's outputs: bounded, so no file
        points = FrameStore((frames.shape[0], height, width, 3), device=self.device, in_memory=in_memory)
        confidence = FrameStore((frames.shape[0], height, width), fill=1.0, device=self.device,
                                in_memory=in_memory) if num_samples > 1 \
            else None
        filled = 0
        group = int(self.pointmap_vae.config.temporal_compression_ratio)
        for start in tqdm(starts, desc="sampling windows", disable=not progress or len(starts) == 1):
            shared = filled - start  # frames [start, filled) are already placed
            placed = points[start:filled] if shared > 0 else None
            placed_confidence = confidence[start:filled] if shared > 0 and confidence is not None else None
            known = None
            if condition_overlap and shared > 0:
                usable = 1 + group * ((shared - 1) // group)  # whole latent frames of the shared ones
                known = shared_in_window_frame(placed[:usable],
                                               None if placed_confidence is None else placed_confidence[:usable])
            local, local_confidence = self.predict_pointmaps(frames[start:start + window], num_steps, generator,
                                                             num_samples, known)
            if local_confidence is None:
                local_confidence = torch.ones(local.shape[:-1], device=local.device)
            if shared > 0:
                weights = local_confidence[:shared]
                if placed_confidence is not None:
                    weights = weights * placed_confidence
                fit = robust_sim3(local[:shared].reshape(-1, 3).double(), placed.reshape(-1, 3).double(),
                                  weights.reshape(-1).double())
                local = apply_sim3(*(value.float() for value in fit), local)
                points[start:filled] = blend_shared(placed, local[:shared])
                if confidence is not None:
                    confidence[start:filled] = blend_shared(placed_confidence[..., None],
                                                            local_confidence[:shared, ..., None])[..., 0]
            points[filled:start + window] = local[max(shared, 0):]
            if confidence is not None:
                confidence[filled:start + window] = local_confidence[max(shared, 0):]
            filled = start + window
        return points, confidence

    @torch.inference_mode()
    def reconstruct(self, frames: torch.Tensor, K: torch.Tensor | None = None, num_steps: int | None = None,
                    seed: int = 0, progress: bool = False, num_samples: int = 1,
                    overlap: int | None = None, condition_overlap: bool = True) -> Reconstruction:
        """Reconstruct a video.

        Args:
            frames: ``uint8 (N, H0, W0, 3)``, N >= the model's T; resized (short side) and centre-cropped to the
                model's grid.
            K: known ``(3, 3)`` intrinsics in pixels of ``frames``, or ``None`` to estimate a shared focal.
            num_steps: sampling steps (default: the config's ``sampler_steps``).
            seed: seed of the sampling noise (same seed, same output).
            progress: show a progress bar over the windows of a long video.
            num_samples: samples drawn per window (in one batch); with more than one, the points are their mean and
                ``confidence`` (T, H, W) comes from their spread and weights camera recovery and window stitching.
            overlap: frames consecutive windows share (1 .. T - 1; ``None``: `default_overlap` of T, 11 of 17).
            condition_overlap: sample each later window conditioned on the frames it shares with those already
                placed (the default; ``False``: each window from the video alone, as before 2026-12-01, for
                ablations). One camera recovery on the shared frames per window; no change for one window.
        Returns:
            `Reconstruction` at the model's resolution; ``metadata["crop_affine"]`` maps input pixels to it. Its
            ``points`` and ``confidence`` are CPU tensors, for a video of several windows backed by an unlinked
            temporary file (read in as they are used; the file's space, 12 bytes a pixel for the points, is freed with
            the tensors).
        Raises:
            ValueError: frames that are not a uint8 ``(N, H, W, 3)`` tensor, fewer than T of them, a ``K`` that is
                not a finite ``(3, 3)`` tensor with positive focal lengths, ``num_steps < 1``, or a bad
                ``num_samples`` / ``overlap``.
        """
        if not isinstance(frames, torch.Tensor):
            raise ValueError(f"frames must be a torch.Tensor, got {type(frames).__name__} (torch.from_numpy converts "
                             "a NumPy array)")
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
        if K is not None:
            if not isinstance(K, torch.Tensor) or K.shape != (3, 3):
                found = tuple(K.shape) if isinstance(K, torch.Tensor) else type(K).__name__
                raise ValueError(f"K must be a (3, 3) torch.Tensor shared by all frames, got {found}")
            if not bool(torch.isfinite(K).all()) or not min(float(K[0, 0]), float(K[1, 1])) > 0:
                raise ValueError(f"K must be finite with positive focal lengths K[0, 0], K[1, 1], got {K.tolist()}")
        window, height, width = self.clip_shape
        frames, affine = resize_and_crop(frames, height, width)
        overlap = default_overlap(window) if overlap is None else overlap
        starts = window_starts(frames.shape[0], window, overlap)
        points, confidence = self._fused_pointmaps(frames, starts, num_steps, seed, num_samples, progress,
                                                   condition_overlap)

        known_K = None if K is None else adjust_intrinsics(K.double(), affine).float().to(self.device)
        cameras = recover_cameras_streamed(lambda index: (points[index], None if confidence is None else confidence[index]),
                                           len(points), K=known_K, compile_mode=self.fast_paths.camera_mode)
        for part in points.chunks():  # into the first recovered camera's frame: c2w[0] = identity
            points[part], first = first_camera_world(points[part], cameras)
        depth = first.depth
        valid = torch.isfinite(depth) & (depth > 0)
        return Reconstruction(
            points=points.tensor().cpu(), depth=depth.cpu(), c2w=first.c2w.cpu(), K=first.K.cpu(), rgb=frames.cpu(),
            confidence=None if confidence is None else confidence.tensor().cpu(), valid=valid.cpu(),
            metadata={"method": "sora3r", "scale": "relative (mean point distance about 1 in the first window)",
                      "sampler_steps": self._steps(num_steps), "seed": seed,
                      "num_samples": num_samples, "windows": starts, "window_overlap": overlap,
                      "overlap_conditioning": condition_overlap,
                      "crop_affine": affine.tolist()},
        )

    def __call__(self, frames: torch.Tensor, **kwargs) -> Reconstruction:
        """``pipeline(frames, ...)``, the diffusers way of calling a pipeline: the same as :meth:`reconstruct`."""
        return self.reconstruct(frames, **kwargs)


# diffusers resolves the "_class_name" of a model_index.json as an attribute of the diffusers package
# (pipeline_loading_utils._get_pipeline_class) and each component's library from the modules already imported
# (_get_library_or_raise: it never imports a module that a folder names). Registering the class there is what lets
# diffusers.DiffusionPipeline.from_pretrained(folder) build a Sora3RPipeline once sora3r.pipeline is imported.
setattr(diffusers, Sora3RPipeline.__name__, Sora3RPipeline)
