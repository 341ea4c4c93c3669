"""Model presets, pointmap-VAE adaptation, joint-latent transformer, save/load round trips."""

import pytest
import torch
from diffusers import AutoencoderKLCogVideoX, CogVideoXTransformer3DModel

from sora3r.models.vae import encode_leading_latents
from sora3r.models import (
    JointLatentTransformer,
    build_vae,
    decode_latents,
    encode_latents,
    estimate_scaling_factor,
    pointmap_vae_from_video_vae,
    vae_config,
)


def test_tiny_bundle_fits_parameter_budget():
    vae_params = sum(p.numel() for p in build_vae("tiny").parameters())
    dit_params = sum(p.numel() for p in JointLatentTransformer.from_preset("tiny").parameters())
    assert 2 * vae_params + dit_params < 15e6
    assert vae_config("paper") == {}  # the library default = CogVideoX's VAE
    with pytest.raises(ValueError, match="unknown VAE preset"):
        vae_config("huge")


def test_mini_video_vae_shares_tiny_latent_space_shape_and_crosses_device_transfer():
    # `mini` exists to replace the bundle's tiny video VAE under a trained DiT: same latent shape, and bf16 weights
    # under the lent GPU's 16 MiB per returned file.
    tiny, mini = build_vae("tiny").eval(), build_vae("mini").eval()
    mini_params = sum(p.numel() for p in mini.parameters())
    assert 2 * sum(p.numel() for p in tiny.parameters()) < mini_params and 2 * mini_params < 16 * 2**20
    clip = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    with torch.no_grad():
        assert encode_latents(mini, clip).shape == encode_latents(tiny, clip).shape


def test_paper_light_pointmap_vae_pairs_with_the_paper_latents_at_a_seventh_of_the_parameters():
    paper, light = build_vae("paper").eval(), build_vae("paper-light").eval()
    count = lambda vae: sum(p.numel() for p in vae.decoder.parameters())
    assert count(light) < count(paper) / 6  # 19.9 M against 123.4 M
    assert light.config.scaling_factor == paper.config.scaling_factor
    clip = torch.rand(1, 3, 9, 16, 16) * 2 - 1
    with torch.no_grad():
        latent = encode_latents(light, clip)
        assert latent.shape == encode_latents(paper, clip).shape == (1, 16, 3, 2, 2)
        assert decode_latents(light, latent).shape == clip.shape


def test_vae_shapes_and_scaling_factor():
    torch.manual_seed(0)
    vae = build_vae("tiny").eval()
    clips = [torch.rand(2, 3, 9, 32, 32) * 2 - 1]
    factor = estimate_scaling_factor(vae, clips)
    assert vae.config.scaling_factor == factor
    with torch.no_grad():
        latent = encode_latents(vae, clips[0])
        assert latent.shape == (2, 16, 3, 4, 4)
        assert 0.8 < float(latent.std()) < 1.25
        assert decode_latents(vae, latent).shape == (2, 3, 9, 32, 32)
        with pytest.raises(ValueError, match="8k\\+1"):
            encode_latents(vae, clips[0][:, :, :5])


def test_pointmap_vae_copies_video_vae(tmp_path):
    video_vae = build_vae("tiny")
    pointmap_vae = pointmap_vae_from_video_vae(video_vae)
    assert isinstance(pointmap_vae, AutoencoderKLCogVideoX) and pointmap_vae is not video_vae
    assert dict(pointmap_vae.config) == dict(video_vae.config)
    for (name, a), b in zip(video_vae.state_dict().items(), pointmap_vae.state_dict().values()):
        assert torch.equal(a, b), name
    next(pointmap_vae.parameters()).data.add_(1.0)  # an independent copy
    assert not torch.equal(next(pointmap_vae.parameters()), next(video_vae.parameters()))
    pointmap_vae.save_pretrained(tmp_path, max_shard_size="15MB", safe_serialization=True)
    loaded = build_vae(tmp_path)
    for a, b in zip(pointmap_vae.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_build_vae_wrong_folder_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        build_vae(tmp_path)


def test_transformer_forward_shape_and_round_trip(tmp_path):
    torch.manual_seed(0)
    model = JointLatentTransformer.from_preset("tiny").eval()
    noisy, video = torch.randn(2, 16, 3, 4, 4), torch.randn(2, 16, 3, 4, 4)
    t = torch.tensor([0.2, 0.9])
    with torch.no_grad():
        out = model(noisy, video, t)
    assert out.shape == noisy.shape
    model.save_pretrained(tmp_path, max_shard_size="15MB", safe_serialization=True)
    assert not list(tmp_path.glob("*.bin"))
    assert all(f.stat().st_size < 16e6 for f in tmp_path.glob("*.safetensors"))
    loaded = JointLatentTransformer.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(noisy, video, t), out)
    with pytest.raises(ValueError, match="latent shapes differ"):
        model(noisy, video[:, :, :2], t)


@pytest.mark.parametrize("prediction_type", ["velocity", "sample"])
def test_velocity_and_clean_outputs_agree_for_both_parameterisations(prediction_type):
    torch.manual_seed(0)
    model = JointLatentTransformer.from_preset("tiny", prediction_type=prediction_type, patch_size=1).eval()
    x0, noise, video = torch.randn(3, 16, 3, 4, 4), torch.randn(3, 16, 3, 4, 4), torch.randn(3, 16, 3, 4, 4)
    t = torch.tensor([0.25, 0.6, 1.0])
    x_t = (1 - t.view(-1, 1, 1, 1, 1)) * x0 + t.view(-1, 1, 1, 1, 1) * noise
    with torch.no_grad():
        velocity, clean = model(x_t, video, t), model(x_t, video, t, output="sample")
    # x_t = (1 - t) x_0 + t eps with v = eps - x_0  =>  x_0 = x_t - t v.
    torch.testing.assert_close(clean, x_t - t.view(-1, 1, 1, 1, 1) * velocity, atol=1e-5, rtol=1e-5)
    assert model.transformer.config.patch_size == 1
    with pytest.raises(ValueError, match="prediction_type"):
        JointLatentTransformer.from_preset("tiny", prediction_type="epsilon")


def test_gradient_checkpointing_gives_same_gradients():
    torch.manual_seed(0)
    model = JointLatentTransformer.from_preset("tiny")
    noisy, video, t = torch.randn(1, 16, 3, 4, 4), torch.randn(1, 16, 3, 4, 4), torch.tensor([0.5])

    def grads():
        model.zero_grad()
        model(noisy, video, t).square().mean().backward()
        return model.null_conditioning.grad.clone()

    plain = grads()
    model.enable_gradient_checkpointing()
    assert model.transformer.gradient_checkpointing
    torch.testing.assert_close(grads(), plain)


@pytest.mark.parametrize("patch_size_t", [None, 1])
def test_widened_pretrained_transformer_keeps_its_output(tmp_path, patch_size_t):
    torch.manual_seed(0)
    pretrained = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=32, in_channels=16, out_channels=16, time_embed_dim=32,
        text_embed_dim=16, num_layers=2, max_text_seq_length=4, use_rotary_positional_embeddings=True,
        sample_height=4, sample_width=4, sample_frames=9, patch_size_t=patch_size_t,
    ).eval()
    pretrained.save_pretrained(tmp_path)
    model = JointLatentTransformer.from_video_transformer(str(tmp_path)).eval()
    noisy, t = torch.randn(2, 16, 3, 4, 4), torch.tensor([0.3, 0.7])
    with torch.no_grad():
        outputs = [model(noisy, torch.randn(2, 16, 3, 4, 4) * 3, t) for _ in range(2)]
        rotary = model._rotary_embedding(3, 4, 4, noisy.device)
        reference = pretrained(
            noisy.transpose(1, 2), model.null_conditioning.expand(2, -1, -1), t * 1000,
            image_rotary_emb=rotary, return_dict=False,
        )[0].transpose(1, 2)
    for out in outputs:
        torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-5)


def test_deepened_transformer_keeps_its_output_and_its_copies_learn():
    """`JointLatentTransformer.deepened`: more blocks, the same predictions, and gradients that open the new blocks."""
    torch.manual_seed(0)
    model = JointLatentTransformer.from_preset("tiny", prediction_type="sample").eval()
    for block in model.transformer.transformer_blocks:  # gates away from zero, so a copy that were open would show
        for norm in (block.norm1, block.norm2):
            torch.nn.init.normal_(norm.linear.bias, std=0.5)
    deeper = model.deepened(9).eval()
    assert len(deeper.transformer.transformer_blocks) == 9 and deeper.transformer.config.num_layers == 9
    assert deeper.config.prediction_type == "sample"
    added = sum(p.numel() for p in deeper.parameters()) - sum(p.numel() for p in model.parameters())
    assert added == 3 * sum(p.numel() for p in model.transformer.transformer_blocks[0].parameters())
    noisy, video, t = torch.randn(2, 16, 3, 4, 6), torch.randn(2, 16, 3, 4, 6), torch.tensor([0.3, 0.9])
    with torch.no_grad():
        torch.testing.assert_close(deeper(noisy, video, t), model(noisy, video, t), rtol=1e-4, atol=1e-5)
    deeper.train()
    deeper(noisy, video, t).square().mean().backward()
    width = deeper.transformer.config.num_attention_heads * deeper.transformer.config.attention_head_dim
    copy = deeper.transformer.transformer_blocks[1]  # block j copies old block floor(j * 6 / 9): 0, 0, 1, ...
    assert float(copy.norm1.linear.bias.detach()[2 * width:3 * width].abs().max()) == 0  # starts closed
    assert float(copy.norm1.linear.bias.grad[2 * width:3 * width].abs().max()) > 0  # and training opens it
    with pytest.raises(ValueError, match="must exceed the current 6"):
        model.deepened(6)


def test_pointmap_vae_from_the_trained_video_vae_starts_better_than_random():
    """The paper's adaptation: the bundled (trained) video VAE's weights reconstruct pointmaps far better, before any
    pointmap training, than a random initialisation of the same VAE."""
    from sora3r.data.synthetic import SyntheticConfig, render_batch, split_seed
    from sora3r.pipeline import BUNDLED_MODEL
    from sora3r.train.pointmap_vae import round_trip_error

    batches = [render_batch([split_seed("val", 0), split_seed("val", 1)], SyntheticConfig(num_frames=9, height=32,
                                                                                           width=48))]
    torch.manual_seed(0)
    trained_start = pointmap_vae_from_video_vae(build_vae(BUNDLED_MODEL / "video_vae")).float().eval()
    random_start = pointmap_vae_from_video_vae(build_vae("tiny")).eval()
    from_video, from_random = round_trip_error(trained_start, True, batches), round_trip_error(random_start, True, batches)
    assert from_video < 0.5 * from_random, (from_video, from_random)


def test_leading_latents_are_those_of_the_longer_clip():
    """The latents of a clip's first 1 + 4k frames encoded alone are the first latent frames of the whole clip: exactly
    for 9 of 17 frames (one frame batch of the encoder), within a few percent for 5 (group norms see fewer frames)."""
    torch.manual_seed(0)
    vae = build_vae("tiny").eval()
    clip = torch.rand(1, 3, 17, 32, 48) * 2 - 1
    with torch.no_grad():
        whole = encode_latents(vae, clip)
        nine, five = encode_leading_latents(vae, clip[:, :, :9]), encode_leading_latents(vae, clip[:, :, :5])
    assert nine.shape[2] == 3 and five.shape[2] == 2
    torch.testing.assert_close(nine, whole[:, :, :3])
    assert float((five - whole[:, :, :2]).abs().mean()) < 0.1 * float(whole.abs().mean())
    with pytest.raises(ValueError, match="1 \\+ 4k frames"):
        encode_leading_latents(vae, clip[:, :, :6])


def test_known_frame_inputs_start_closed_then_carry_the_known_latent():
    """`with_known_frame_inputs`: 3C + 1 input channels whose new weights are zero (same predictions, with or without
    known frames); once they are non-zero the known frames change the prediction, and only through the frames marked
    known (``known_frames``)."""
    torch.manual_seed(0)
    model = JointLatentTransformer.from_preset("tiny", prediction_type="sample").eval()
    widened = model.with_known_frame_inputs().eval()
    assert widened.config.known_frame_inputs and widened.transformer.config.in_channels == 3 * 16 + 1
    noisy, video, t = torch.randn(2, 16, 3, 4, 6), torch.randn(2, 16, 3, 4, 6), torch.tensor([0.3, 0.9])
    known = torch.randn(1, 16, 2, 4, 6)
    with torch.no_grad():
        plain = model(noisy, video, t)
        torch.testing.assert_close(widened(noisy, video, t), plain, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(widened(noisy, video, t, known=known), plain, rtol=1e-4, atol=1e-5)
        torch.nn.init.normal_(widened.transformer.patch_embed.proj.weight, std=0.05)
        base = widened(noisy, video, t)
        assert (widened(noisy, video, t, known=known) - base).abs().max() > 1e-3
        # Known frames marked as none (count 0) are ignored; values past each count are never read.
        torch.testing.assert_close(widened(noisy, video, t, known=known.expand(2, -1, -1, -1, -1),
                                           known_frames=torch.tensor([0, 0])), base)
        one = widened(noisy, video, t, known=known[:, :, :1])
        padded = torch.cat([known[:, :, :1], torch.randn(1, 16, 2, 4, 6)], dim=2)
        torch.testing.assert_close(widened(noisy, video, t, known=padded, known_frames=torch.tensor([1, 1])), one)
    with pytest.raises(ValueError, match="takes no known frames"):
        model(noisy, video, t, known=known)
    with pytest.raises(ValueError, match="known latent"):
        widened(noisy, video, t, known=torch.randn(1, 16, 4, 4, 6))
    with pytest.raises(ValueError, match="already takes"):
        widened.with_known_frame_inputs()
