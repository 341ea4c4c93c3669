"""Joint-latent diffusion transformer: diffusers ``CogVideoXTransformer3DModel`` on ``[noisy pointmap, video]`` latents.

The input is the channel concatenation of the noisy pointmap latent and the clean video latent
(in_channels = 2C). A model with ``known_frame_inputs`` also takes the clean pointmap latent of a window's first
latent frames when they are known (zeros elsewhere) and a one-channel mask of those frames (in_channels = 3C + 1), as
CogVideoX's image-to-video model concatenates its first-frame latent: the window stitching conditions each window on
the frames it shares with those already placed. The network's output (out_channels = C) is either the velocity of
the pointmap latent (``prediction_type="velocity"``, the rectified-flow default) or the clean pointmap latent itself
(``prediction_type="sample"``, x-prediction: the network never has to reproduce the noise, which a small model does
poorly; Li & He, "Back to Basics: Let Denoising Generative Models Denoise", 2025). ``forward`` returns either the
velocity (what the sampler integrates) or the clean latent, whichever parameterisation the weights were trained in.
A learned null conditioning ``(max_text_seq_length, text_embed_dim)`` stands in for text.
Timesteps are flow times ``t`` in [0, 1] (1 = pure noise, see ``sora3r.diffusion.flow``); the
transformer's sinusoidal time embedding receives ``t * 1000`` like CogVideoX's discrete steps.
"""

from __future__ import annotations

import inspect
import os

import torch
from diffusers import CogVideoXTransformer3DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import get_3d_rotary_pos_embed
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from sora3r.diffusion.flow import clean_from_velocity, velocity_from_clean

TIMESTEP_SCALE = 1000.0
PREDICTION_TYPES = ("velocity", "sample")

TRANSFORMER_PRESETS: dict[str, dict] = {
    # ~7.4 M parameters.
    "tiny": dict(num_layers=6, num_attention_heads=4, attention_head_dim=64, time_embed_dim=128, text_embed_dim=64, max_text_seq_length=8),
    # ~14 M parameters with patch size 1: what a bf16 bundle can hold within the 64 MB the device transfers allow.
    "mini": dict(num_layers=8, num_attention_heads=5, attention_head_dim=64, time_embed_dim=128, text_embed_dim=64, max_text_seq_length=8, patch_size=1),
    # ~64 M parameters.
    "small": dict(num_layers=10, num_attention_heads=8, attention_head_dim=64, time_embed_dim=512, text_embed_dim=128, max_text_seq_length=16),
    # ~240 M parameters.
    "base": dict(num_layers=20, num_attention_heads=12, attention_head_dim=64, time_embed_dim=512, text_embed_dim=256, max_text_seq_length=16),
    # CogVideoX-2B layout (~1.7 B parameters) with rotary embeddings.
    "paper": dict(num_layers=30, num_attention_heads=30, attention_head_dim=64, time_embed_dim=512, text_embed_dim=4096, max_text_seq_length=226),
}


class JointLatentTransformer(ModelMixin, ConfigMixin):
    """Velocity model ``v(noisy pointmap latent, video latent, t)`` on ``(B, C, t, h, w)`` latents.

    Args:
        latent_channels: C, the latent channels of each VAE.
        transformer_kwargs: further ``CogVideoXTransformer3DModel`` arguments (layers, heads, ...);
            ``in_channels`` / ``out_channels`` are set from ``latent_channels``.
        prediction_type: what the network outputs, ``"velocity"`` or ``"sample"`` (the clean latent).
        known_frame_inputs: whether the model takes known leading pointmap latent frames (``forward``'s ``known``).
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(self, latent_channels: int = 16, transformer_kwargs: dict | None = None,
                 prediction_type: str = "velocity", known_frame_inputs: bool = False):
        super().__init__()
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
        kwargs = dict(use_rotary_positional_embeddings=True, sample_height=8, sample_width=8, sample_frames=9)
        kwargs.update(transformer_kwargs or {})
        kwargs.update(in_channels=input_channels(latent_channels, known_frame_inputs), out_channels=latent_channels)
        self.transformer = CogVideoXTransformer3DModel(**kwargs)
        config = self.transformer.config
        self.null_conditioning = nn.Parameter(0.02 * torch.randn(config.max_text_seq_length, config.text_embed_dim))
        self._rotary_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_preset(cls, preset: str, latent_channels: int = 16, prediction_type: str = "velocity",
                    patch_size: int | None = None, known_frame_inputs: bool = False) -> "JointLatentTransformer":
        """A randomly initialised model of a preset ("tiny" | "mini" | "small" | "base" | "paper"); ``patch_size``
        overrides the preset's spatial patch size (CogVideoX's default is 2)."""
        if preset not in TRANSFORMER_PRESETS:
            raise ValueError(f"unknown transformer preset {preset!r}; choose one of {sorted(TRANSFORMER_PRESETS)}")
        kwargs = dict(TRANSFORMER_PRESETS[preset])
        if patch_size is not None:
            kwargs["patch_size"] = patch_size
        return cls(latent_channels=latent_channels, transformer_kwargs=kwargs, prediction_type=prediction_type,
                   known_frame_inputs=known_frame_inputs)

    @classmethod
    def from_video_transformer(cls, path_or_model: str | os.PathLike | CogVideoXTransformer3DModel) -> "JointLatentTransformer":
        """Start from a pretrained CogVideoX transformer with C input channels.

        The patch embedding is widened to 2C; the weights of the new (video-latent) channels are zero,
        so the result predicts exactly what the pretrained model predicts for the noisy latent alone.
        """
        if isinstance(path_or_model, CogVideoXTransformer3DModel):
            pretrained = path_or_model
        else:
            if not os.path.isfile(os.path.join(path_or_model, "config.json")):
                raise FileNotFoundError(f"{path_or_model}: no diffusers transformer folder (config.json missing)")
            pretrained = CogVideoXTransformer3DModel.from_pretrained(path_or_model)
        config = dict(pretrained.config)
        channels = config["in_channels"]
        if config.get("out_channels") not in (None, channels):
            raise ValueError(f"pretrained transformer has in_channels={channels} but out_channels={config['out_channels']}")
        init_keys = set(inspect.signature(CogVideoXTransformer3DModel.__init__).parameters) - {"self", "in_channels", "out_channels"}
        kwargs = {k: v for k, v in config.items() if k in init_keys}
        model = cls(latent_channels=channels, transformer_kwargs=kwargs)
        state = pretrained.state_dict()
        state["patch_embed.proj.weight"] = _widened_patch_embedding(state["patch_embed.proj.weight"], channels,
                                                                    2 * channels)
        model.transformer.load_state_dict(state)
        return model.to(dtype=pretrained.dtype)

    def with_known_frame_inputs(self) -> "JointLatentTransformer":
        """A copy that also takes known leading pointmap latent frames (``known_frame_inputs``) and predicts exactly
        what this model predicts until training uses them: the patch embedding's weights of the new ``C + 1`` input
        channels are zero.

        Raises:
            ValueError: the model already takes them.
        """
        if self.config.known_frame_inputs:
            raise ValueError("with_known_frame_inputs: the model already takes known frames")
        channels = self.config.latent_channels
        widened = type(self)(latent_channels=channels, transformer_kwargs=self.config.transformer_kwargs,
                             prediction_type=self.config.prediction_type, known_frame_inputs=True)
        state = self.state_dict()
        key = "transformer.patch_embed.proj.weight"
        state[key] = _widened_patch_embedding(state[key], 2 * channels, input_channels(channels, True))
        widened.load_state_dict(state)
        return widened.to(dtype=self.dtype)

    def deepened(self, num_layers: int) -> "JointLatentTransformer":
        """A copy with ``num_layers`` transformer blocks that computes exactly the same function (more capacity to
        train further without starting again).

        Block ``j`` of the new stack copies block ``floor(j * L / num_layers)`` of the ``L`` old ones, so each old
        block is followed by its copies; in every copy the adaLN-Zero gates of the attention and feed-forward
        residuals (the ``gate`` and ``enc_gate`` rows of ``norm1.linear`` and ``norm2.linear``, diffusers
        ``CogVideoXLayerNormZero``) are zero, so it adds nothing until training opens them (the zero-initialised
        residual branches of DiT, Peebles & Xie 2023).

        Raises:
            ValueError: ``num_layers`` not larger than the current depth.
        """
        config = self.transformer.config
        old = config.num_layers
        if num_layers <= old:
            raise ValueError(f"deepened: num_layers must exceed the current {old}, got {num_layers}")
        kwargs = dict(self.config.transformer_kwargs or {}, num_layers=num_layers)
        deeper = type(self)(latent_channels=self.config.latent_channels, transformer_kwargs=kwargs,
                            prediction_type=self.config.prediction_type,
                            known_frame_inputs=self.config.known_frame_inputs)
        state = {k: v for k, v in self.state_dict().items() if ".transformer_blocks." not in f".{k}"}
        width = config.num_attention_heads * config.attention_head_dim
        source = [j * old // num_layers for j in range(num_layers)]
        for j, i in enumerate(source):
            block = {k: v.clone() for k, v in self.transformer.transformer_blocks[i].state_dict().items()}
            if j > 0 and source[j - 1] == i:  # a copy: its residual branches start closed
                for norm in ("norm1", "norm2"):
                    for chunk in (2, 5):  # gate, enc_gate of (shift, scale, gate, enc_shift, enc_scale, enc_gate)
                        rows = slice(chunk * width, (chunk + 1) * width)
                        block[f"{norm}.linear.weight"][rows] = 0
                        block[f"{norm}.linear.bias"][rows] = 0
            state.update({f"transformer.transformer_blocks.{j}.{k}": v for k, v in block.items()})
        deeper.load_state_dict(state)
        return deeper.to(dtype=self.dtype)

    def _rotary_embedding(self, frames: int, height: int, width: int, device: torch.device):
        """Cached (cos, sin) rotary tables for a latent grid of ``frames x height x width``."""
        key = (frames, height, width, str(device))
        if key not in self._rotary_cache:
            config = self.transformer.config
            grid_h, grid_w = height // config.patch_size, width // config.patch_size
            temporal = frames // (config.patch_size_t or 1)
            self._rotary_cache[key] = get_3d_rotary_pos_embed(
                embed_dim=config.attention_head_dim,
                crops_coords=((0, 0), (grid_h, grid_w)),
                grid_size=(grid_h, grid_w),
                temporal_size=temporal,
                device=device,
            )
        return self._rotary_cache[key]

    def forward(self, noisy_pointmap_latent: torch.Tensor, video_latent: torch.Tensor, timestep: torch.Tensor,
                output: str = "velocity", known: torch.Tensor | None = None,
                known_frames: torch.Tensor | None = None) -> torch.Tensor:
        """The velocity (``output="velocity"``) or the clean pointmap latent (``output="sample"``), ``(B, C, t, h, w)``,
        for noisy latents at flow times ``timestep (B,)`` in [0, 1]; converted from the network's own parameterisation
        by ``x_t = (1 - t) x_0 + t eps``, i.e. ``v = (x_t - x_0) / t`` and ``x_0 = x_t - t v``.

        ``known`` (models with ``known_frame_inputs`` only): the clean pointmap latent ``(B or 1, C, L, h, w)`` of the
        first ``L <= t`` latent frames; ``known_frames`` ``int (B,)``, how many of them each sample knows (default: all
        L; 0: none, as without ``known``). The noisy latent's frames stay as given: the model reads the known ones
        from their own input channels.

        Both outputs go through ``forward`` so that a DDP-wrapped model synchronises gradients either way.

        Raises:
            ValueError: latent shapes that differ, ``known`` for a model without known-frame inputs or of another
                shape, or an unknown ``output``.
        """
        raw = self._network(noisy_pointmap_latent, video_latent, timestep, known, known_frames)
        if output == self.config.prediction_type:
            return raw
        if output == "velocity":  # the network predicts x_0
            return velocity_from_clean(noisy_pointmap_latent, raw, timestep)
        if output == "sample":  # the network predicts v
            return clean_from_velocity(noisy_pointmap_latent, raw, timestep)
        raise ValueError(f"output must be one of {PREDICTION_TYPES}, got {output!r}")

    def _known_channels(self, video_latent: torch.Tensor, known: torch.Tensor | None,
                        known_frames: torch.Tensor | None) -> torch.Tensor:
        """The known-frame input channels ``(B, C + 1, t, h, w)``: the known latent where a frame is known, else 0,
        and the mask of known frames."""
        batch, channels, frames, height, width = video_latent.shape
        if known is None:
            return video_latent.new_zeros(batch, channels + 1, frames, height, width)
        if known.ndim != 5 or known.shape[0] not in (1, batch) or known.shape[1] != channels \
                or known.shape[3:] != video_latent.shape[3:] or known.shape[2] > frames:
            raise ValueError(f"known latent {tuple(known.shape)} must be (B or 1, C, L <= t, h, w) for latents of "
                             f"{tuple(video_latent.shape)}")
        if known_frames is None:
            known_frames = torch.full((batch,), known.shape[2], device=known.device)
        known = known.to(video_latent.dtype).expand(batch, -1, -1, -1, -1)
        known = torch.nn.functional.pad(known, (0, 0, 0, 0, 0, frames - known.shape[2]))
        mask = torch.arange(frames, device=known.device) < known_frames.reshape(-1, 1).to(known.device)
        mask = mask.to(known.dtype).reshape(batch, 1, frames, 1, 1).expand(-1, -1, -1, height, width)
        return torch.cat([known * mask, mask], dim=1)

    def _network(self, noisy_pointmap_latent: torch.Tensor, video_latent: torch.Tensor, timestep: torch.Tensor,
                 known: torch.Tensor | None = None, known_frames: torch.Tensor | None = None) -> torch.Tensor:
        """The transformer's raw output ``(B, C, t, h, w)`` (velocity or clean latent, see ``prediction_type``)."""
        if noisy_pointmap_latent.shape != video_latent.shape:
            raise ValueError(f"latent shapes differ: {tuple(noisy_pointmap_latent.shape)} vs {tuple(video_latent.shape)}")
        inputs = [noisy_pointmap_latent, video_latent]
        if self.config.known_frame_inputs:
            inputs.append(self._known_channels(video_latent, known, known_frames))
        elif known is not None:
            raise ValueError("this transformer takes no known frames (known_frame_inputs is off)")
        batch, _, frames, height, width = video_latent.shape
        joint = torch.cat(inputs, dim=1).transpose(1, 2)  # (B, t, in_channels, h, w)
        rotary = None
        if self.transformer.config.use_rotary_positional_embeddings:
            rotary = self._rotary_embedding(frames, height, width, joint.device)
        conditioning = self.null_conditioning.to(joint.dtype).expand(batch, -1, -1)
        out = self.transformer(
            hidden_states=joint,
            encoder_hidden_states=conditioning,
            timestep=timestep.to(joint.dtype) * TIMESTEP_SCALE,
            image_rotary_emb=rotary,
            return_dict=False,
        )[0]
        return out.transpose(1, 2)


def input_channels(latent_channels: int, known_frame_inputs: bool) -> int:
    """The network's input channels: noisy pointmap and video latents, plus known pointmap latent and mask."""
    return (3 * latent_channels + 1) if known_frame_inputs else 2 * latent_channels


def _widened_patch_embedding(weight: torch.Tensor, channels: int, wider: int) -> torch.Tensor:
    """A patch-embedding weight for ``channels`` input channels widened to ``wider`` with zero weights for the new
    ones: Conv2d ``(D, C, p, p)`` or Linear ``(D, C * p_t * p * p)`` (flattened channel-major)."""
    if weight.ndim == 4:
        return torch.cat([weight, weight.new_zeros(weight.shape[0], wider - channels, *weight.shape[2:])], dim=1)
    per_channel = weight.reshape(weight.shape[0], channels, -1)
    extra = per_channel.new_zeros(weight.shape[0], wider - channels, per_channel.shape[2])
    return torch.cat([per_channel, extra], dim=1).flatten(1)
