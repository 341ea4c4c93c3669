"""scripts/paper_folders.py: random CogVideoX-shaped diffusers folders, and training loading them like pretrained ones.

The full-size folders are checked on the meta device (shapes and parameter counts, no memory); the reduced ones are
written, then read by stage 1 (``--init-video-vae``) and stage 2 (``--video-vae`` / ``--pointmap-vae`` /
``--init-transformer``) at learning rate 0, so the saved models must hold exactly the folders' weights.
"""

import sys

import pytest
import torch
from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel
from safetensors.torch import load_file

from sora3r.models.transformer import JointLatentTransformer
from sora3r.train.dit import DiTConfig, train_dit
from sora3r.train.pointmap_vae import PointmapVAEConfig, train_pointmap_vae

from repo_modules import load_repo_module

paper_folders = load_repo_module("scripts", "paper_folders")

TINY_RUN = dict(num_frames=9, height=16, width=16, batch_size=1, steps=1, lr=0.0, warmup_steps=1, log_every=1,
                checkpoint_mode="light")


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_size_folders_are_cogvideox_and_widen_to_the_paper_preset():
    vae_kwargs, transformer_kwargs = paper_folders.folder_configs("paper")
    with torch.device("meta"):
        vae = AutoencoderKLCogVideoX(**vae_kwargs)
        video_transformer = CogVideoXTransformer3DModel(**transformer_kwargs)
        joint = JointLatentTransformer.from_video_transformer(video_transformer)
        preset = JointLatentTransformer.from_preset("paper")
    assert vae.config.latent_channels == 16 and vae.config.block_out_channels == (128, 256, 256, 512)
    assert 215e6 < count(vae) < 217e6  # CogVideoX's VAE
    assert video_transformer.config.num_layers == 30 and video_transformer.config.text_embed_dim == 4096
    assert 1.68e9 < count(video_transformer) < 1.70e9  # CogVideoX-2B
    assert count(joint) == count(preset)
    shapes = {name: p.shape for name, p in joint.named_parameters()}
    assert shapes == {name: p.shape for name, p in preset.named_parameters()}


def test_script_writes_folders_and_refuses_a_foreign_output(tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    assert paper_folders.main([str(foreign), "--size", "reduced"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(foreign) in err[0]
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    """Reduced folders in bf16 (how released CogVideoX weights are stored), one per position embedding."""
    root = tmp_path_factory.mktemp("paper_folders")
    for positional in ("rotary", "learned"):
        assert paper_folders.main([str(root / positional), "--size", "reduced", "--positional", positional]) == 0
    return root


def test_stage1_starts_from_the_folder_vae(reduced, tmp_path):
    folder = reduced / "rotary" / "vae"
    saved = load_file(folder / "diffusion_pytorch_model.safetensors")
    assert {t.dtype for t in saved.values()} == {torch.bfloat16}
    summary = train_pointmap_vae(PointmapVAEConfig(output=str(tmp_path / "run"), init_video_vae=str(folder), **TINY_RUN))
    assert summary["step"] == 1
    trained = AutoencoderKLCogVideoX.from_pretrained(tmp_path / "run" / "model").state_dict()
    assert trained.keys() == saved.keys()
    for name, weight in saved.items():  # trained in float32, from exactly the folder's weights
        assert trained[name].dtype == torch.float32 and torch.equal(trained[name], weight.float()), name


@pytest.mark.parametrize("positional", ["rotary", "learned"])
def test_stage2_widens_the_folder_transformer(reduced, tmp_path, positional):
    folder = reduced / positional
    config = DiTConfig(output=str(tmp_path / "run"), video_vae=str(folder / "vae"), pointmap_vae=str(folder / "vae"),
                       squash=True, init_transformer=str(folder / "transformer"), **TINY_RUN)
    summary = train_dit(config)
    assert summary["step"] == 1 and summary["loss"] > 0
    trained = JointLatentTransformer.from_pretrained(tmp_path / "run" / "model")
    assert trained.transformer.config.use_rotary_positional_embeddings == (positional == "rotary")
    saved = load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors")
    state = trained.transformer.state_dict()
    for name, weight in saved.items():
        if name == "patch_embed.proj.weight":  # widened: the video-latent half of the input starts at zero
            channels = weight.shape[1]  # Conv2d (D, C, p, p): no temporal patches in CogVideoX-2B
            assert torch.equal(state[name][:, :channels], weight.float()) and not state[name][:, channels:].any()
        else:
            assert torch.equal(state[name], weight.float()), name


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
