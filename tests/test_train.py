"""Training stages at tiny size: losses fall, checkpoints round-trip, stopped runs resume exactly, export loads."""

import json
import math
import shutil

import pytest
import torch

from sora3r.cli import main
from sora3r.geometry.projection import intrinsics_matrix
from sora3r.models.inputs import pointmap_to_model, rgb_to_model
from sora3r.models.transformer import JointLatentTransformer
from sora3r.geometry.target import PointmapTarget, normalize_scale
from sora3r.geometry.transforms import to_first_frame
from sora3r.models.vae import build_vae, encode_latents, encode_leading_latents
from sora3r.pipeline import Sora3RPipeline
from sora3r.train.assemble import average_weights
from sora3r.train.camera_objective import camera_motion_loss
from sora3r.train.dit import DiTConfig, DiTStage, train_dit
from sora3r.train.pointmap_vae import PointmapVAEConfig, train_pointmap_vae
from sora3r.train.video_vae import VideoVAEConfig, train_video_vae
from sora3r.types import ClipBatch

FRAMES, SIZE = 9, 16
TINY = dict(num_frames=FRAMES, height=SIZE, width=SIZE, batch_size=2, warmup_steps=1, log_every=2, ema_decay=0.9)


def plane_scenes(step: int, batch_size: int) -> ClipBatch:
    """Procedural clips (a textured wall seen by a sliding camera) that depend only on ``step``.

    Steps cycle over four batches, so that a few CPU steps show the optimisation working.
    """
    g = torch.Generator().manual_seed(1000 + step % 4)
    focal, t = 0.8 * SIZE, torch.arange(FRAMES, dtype=torch.float32)
    v, u = torch.meshgrid(torch.arange(SIZE, dtype=torch.float32), torch.arange(SIZE, dtype=torch.float32), indexing="ij")
    rays = torch.stack([(u - SIZE / 2 + 0.5) / focal, (v - SIZE / 2 + 0.5) / focal, torch.ones_like(u)], -1)
    clips = {k: [] for k in ("rgb", "points", "c2w", "valid")}
    for _ in range(batch_size):
        wall, speed, forward, freq = 2 + 2 * torch.rand(4, generator=g) * torch.tensor([1, 0.1, 0.2, 3])
        origin = torch.stack([speed * t, 0 * t, forward * t], -1)  # (T, 3)
        depth = (wall - origin[:, 2])[:, None, None, None]
        points = origin[:, None, None] + rays * depth  # (T, H, W, 3)
        pattern = torch.stack([torch.sin(freq * points[..., 0]), torch.cos(freq * points[..., 1]),
                               torch.sin(freq * (points[..., 0] + points[..., 1]))], -1)
        c2w = torch.eye(4).repeat(FRAMES, 1, 1)
        c2w[:, :3, 3] = origin
        clips["rgb"].append(((pattern + 1) * 127.5).round().to(torch.uint8))
        clips["points"].append(points)
        clips["c2w"].append(c2w)
        clips["valid"].append(torch.ones(FRAMES, SIZE, SIZE, dtype=torch.bool))
    K = intrinsics_matrix(focal, focal, SIZE / 2 - 0.5, SIZE / 2 - 0.5).expand(batch_size, 3, 3)
    return ClipBatch(**{k: torch.stack(v) for k, v in clips.items()}, K=K)


def losses(run_dir) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "loss.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def video_vae_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("video_vae")
    summary = train_video_vae(VideoVAEConfig(output=str(run), steps=16, lr=2e-3, **TINY), plane_scenes)
    return run, summary


@pytest.fixture(scope="module")
def pointmap_vae_run(tmp_path_factory, video_vae_run):
    run = tmp_path_factory.mktemp("pointmap_vae")
    config = PointmapVAEConfig(output=str(run), steps=8, lr=2e-3, init_video_vae=str(video_vae_run[0] / "model"),
                               squash=True, **TINY)
    return run, train_pointmap_vae(config, plane_scenes)


def test_a_run_folder_is_continued_or_replaced_only_when_asked(tmp_path, video_vae_run):
    run = tmp_path / "run"
    shutil.copytree(video_vae_run[0], run)  # an earlier run of 16 steps
    before = (run / "loss.jsonl").read_bytes()
    with pytest.raises(FileExistsError, match="holds an earlier run; pass --resume to continue it, or --overwrite"):
        train_video_vae(VideoVAEConfig(output=str(run), steps=1, **TINY), plane_scenes)
    assert (run / "loss.jsonl").read_bytes() == before
    summary = train_video_vae(VideoVAEConfig(output=str(run), steps=1, overwrite=True, **TINY), plane_scenes)
    assert summary["step"] == 1 and summary["resumed_from"] is None


def test_video_vae_stage_learns_and_saves(video_vae_run):
    run, summary = video_vae_run
    assert summary["step"] == 16 and summary["finished"]
    curve = losses(run)
    assert len(curve) == 8 and sum(curve[-2:]) < sum(curve[:2])
    vae = build_vae(run / "model")
    assert vae.config.scaling_factor != 1.0
    with torch.no_grad():
        latent = encode_latents(vae.eval(), rgb_to_model(plane_scenes(0, 2).rgb))
    assert 0.7 < float(latent.std()) < 1.4  # the stored scaling factor makes latents ~unit variance
    assert json.loads((run / "model" / "training.json").read_text())["steps"] == 16
    assert all(f.stat().st_size < 16e6 for f in run.rglob("*.safetensors"))


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory, video_vae_run, pointmap_vae_run):
    """A 2-step DiT run and the model folder `sora3r train export` makes of it with the two VAEs: ``(dit_run,
    model_folder)``, read-only for the tests."""
    root = tmp_path_factory.mktemp("exported")
    dit_run, folder = root / "dit", root / "bundle"
    train_dit(dit_config(dit_run, video_vae_run, pointmap_vae_run, steps=2, checkpoint_mode="light"), plane_scenes)
    assert main(["train", "export", "--output", str(folder), "--video-vae", str(video_vae_run[0] / "model"),
                 "--pointmap-vae", str(pointmap_vae_run[0] / "model"), "--transformer", str(dit_run / "model")]) == 0
    return dit_run, folder


def test_pointmap_vae_stage_learns(pointmap_vae_run):
    run, summary = pointmap_vae_run
    curve = losses(run)
    assert summary["step"] == 8 and curve[-1] < curve[0]
    assert json.loads((run / "model" / "training.json").read_text())["squash"] is True


def test_pointmap_decoder_fine_tune_keeps_the_latent_space(tmp_path, pointmap_vae_run):
    """``--decoder-only`` (here with the camera-motion loss too): the decoder learns, while the encoder and the scaling
    factor (the latent space a trained transformer works in) stay bit-identical, so every pointmap encodes to exactly
    the latent it had."""
    start = pointmap_vae_run[0] / "model"
    config = PointmapVAEConfig(output=str(tmp_path), steps=8, lr=2e-3, init_pointmap_vae=str(start), decoder_only=True,
                               squash=True, camera_loss_weight=0.5, **TINY)
    summary = train_pointmap_vae(config, plane_scenes)
    before, after = build_vae(start), build_vae(tmp_path / "model")
    assert summary["step"] == 8 and losses(tmp_path)[-1] < losses(tmp_path)[0]
    assert after.config.scaling_factor == before.config.scaling_factor
    old, new = before.state_dict(), after.state_dict()
    assert all(torch.equal(old[k], new[k]) for k in old if k.startswith(("encoder.", "quant_conv.")))
    assert not all(torch.equal(old[k], new[k]) for k in old if k.startswith("decoder."))
    x = plane_scenes(0, 2).points.permute(0, 4, 1, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(encode_latents(after.eval(), x), encode_latents(before.eval(), x), rtol=0, atol=0)


def test_decoder_only_needs_a_trained_pointmap_vae():
    with pytest.raises(ValueError, match="--decoder-only.*--init-pointmap-vae"):
        PointmapVAEConfig(decoder_only=True, **TINY)
    with pytest.raises(ValueError, match="--decode-samples-of.*needs --decoder-only"):
        PointmapVAEConfig(init_pointmap_vae="vae", decode_samples_of="bundle", **TINY)


def test_decoder_fine_tuned_on_sampled_latents_decodes_them_better(tmp_path, exported_run):
    """``--decode-samples-of MODEL``: the decoder learns on the latents MODEL's transformer samples from each clip's
    video, so the pointmaps decoded from those samples get closer to the truth than with the starting decoder, while
    the encoder stays bit-identical."""
    bundle = exported_run[1]
    run = tmp_path / "decoder"
    config = PointmapVAEConfig(output=str(run), steps=12, lr=2e-3, init_pointmap_vae=str(bundle / "pointmap_vae"),
                               decoder_only=True, decode_samples_of=str(bundle), squash=True, **TINY)
    summary = train_pointmap_vae(config, plane_scenes)
    assert summary["step"] == 12

    pipeline = Sora3RPipeline.from_pretrained(bundle, "cpu", torch.float32)
    batch = plane_scenes(0, 2)
    x, valid = pointmap_to_model(batch.points, batch.c2w, batch.valid, pipeline.target)
    with torch.no_grad():
        video_latent = encode_latents(pipeline.video_vae, rgb_to_model(batch.rgb))
        latent = pipeline.sample_pointmap_latent(video_latent, generator=torch.Generator().manual_seed(5))

        def error(vae) -> float:
            decoded = vae.decode(latent / vae.config.scaling_factor).sample
            return float((decoded - x).norm(dim=1)[valid[:, 0]].mean())

        before, after = build_vae(bundle / "pointmap_vae"), build_vae(run / "model")
        assert error(after) < 0.8 * error(before)
    old, new = before.state_dict(), after.state_dict()
    assert all(torch.equal(old[k], new[k]) for k in old if k.startswith(("encoder.", "quant_conv.")))


def dit_config(tmp_path, video_vae_run, pointmap_vae_run, **overrides):
    settings = dict(output=str(tmp_path), video_vae=str(video_vae_run[0] / "model"),
                    pointmap_vae=str(pointmap_vae_run[0] / "model"), steps=16, lr=1e-3, **TINY)
    settings.update(overrides)
    return DiTConfig(**settings)


@pytest.mark.slow
def test_dit_stage_learns(tmp_path, video_vae_run, pointmap_vae_run):
    summary = train_dit(dit_config(tmp_path, video_vae_run, pointmap_vae_run, steps=20), plane_scenes)
    curve = losses(tmp_path)
    assert summary["step"] == 20 and math.isfinite(curve[-1])
    assert sum(curve[-3:]) / 3 < 0.8 * sum(curve[:3]) / 3


def test_dit_rejects_conflicting_squash(tmp_path, video_vae_run, pointmap_vae_run):
    with pytest.raises(ValueError, match="squash"):
        train_dit(dit_config(tmp_path, video_vae_run, pointmap_vae_run, squash=False), plane_scenes)


def final_transformer(run_dir):
    return JointLatentTransformer.from_pretrained(run_dir / "model").state_dict()


@pytest.mark.slow
@pytest.mark.parametrize("mode, options", [
    ("full", {}),
    ("full", dict(replay_clips=6, replay_batch_size=3)),  # the replay pool is rebuilt exactly on resume
    ("light", {}),
    ("light", dict(light_ema_only=True)),
])
def test_stopped_run_resumes(tmp_path, video_vae_run, pointmap_vae_run, mode, options):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_dit(dit_config(whole, video_vae_run, pointmap_vae_run, steps=8, checkpoint_mode=mode, **options),
              plane_scenes)
    first = train_dit(dit_config(split, video_vae_run, pointmap_vae_run, steps=4, checkpoint_mode=mode, **options),
                      plane_scenes)
    (split / "loss.jsonl").open("a").write(json.dumps({"step": 99, "loss": 0.0}) + "\n")  # lines past the checkpoint
    resumed = train_dit(dit_config(split, video_vae_run, pointmap_vae_run, steps=8, checkpoint_mode=mode,
                                   resume=True, **options), plane_scenes)
    assert first["step"] == 4 and resumed["step"] == 8 and resumed["resumed_from"] == mode
    if mode == "light":
        assert (split / "light" / "model").exists() != options.get("light_ema_only", False)
    steps = [json.loads(line)["step"] for line in (split / "loss.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]
    if mode == "full":  # optimizer, schedule, EMA and data order all continue: the same run
        torch.testing.assert_close(losses(split), losses(whole), rtol=1e-4, atol=1e-6)
        for a, b in zip(final_transformer(split).values(), final_transformer(whole).values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    else:  # fresh optimizer with a short warm-up: the run continues, close to but not equal to the whole one
        torch.testing.assert_close(losses(split)[:2], losses(whole)[:2])
        assert all(math.isfinite(x) for x in losses(split))
        assert losses(split)[-1] < 1.5 * losses(whole)[-1]


@pytest.mark.parametrize("mode", ["full", "light"])
def test_lr_decays_linearly_to_zero_over_the_last_steps_across_a_resume(tmp_path, video_vae_run, pointmap_vae_run,
                                                                        mode):
    """Warmup-stable-decay: constant until ``steps - decay_steps``, then linearly to 0 at ``steps``, counted in
    optimisation steps whether the run is fresh or resumed (full: restored scheduler; light: fresh one)."""
    options = dict(checkpoint_mode=mode, log_every=1, lr=1e-3, light_warmup_steps=1)
    train_dit(dit_config(tmp_path, video_vae_run, pointmap_vae_run, steps=4, decay_steps=4, **options), plane_scenes)
    train_dit(dit_config(tmp_path, video_vae_run, pointmap_vae_run, steps=8, decay_steps=4, resume=True, **options),
              plane_scenes)
    rates = [json.loads(line)["lr"] for line in (tmp_path / "loss.jsonl").read_text().splitlines()]
    # the first four steps ran as a 4-step run decaying over all of them; after the resume, the 8-step schedule
    assert rates[:3] == pytest.approx([7.5e-4, 5e-4, 2.5e-4]) and rates[3] == pytest.approx(0, abs=1e-12)
    assert rates[4:] == pytest.approx([7.5e-4, 5e-4, 2.5e-4, 0], abs=1e-12)


def test_killed_between_renames_recovers_old_checkpoint(tmp_path, video_vae_run, pointmap_vae_run):
    train_dit(dit_config(tmp_path, video_vae_run, pointmap_vae_run, steps=2, checkpoint_mode="full"), plane_scenes)
    (tmp_path / "state").rename(tmp_path / "state.old")  # as if killed after the first of the two renames
    (tmp_path / "state.tmp").mkdir()  # a half-written checkpoint
    summary = train_dit(dit_config(tmp_path, video_vae_run, pointmap_vae_run, steps=3, checkpoint_mode="full",
                                   resume=True), plane_scenes)
    assert summary["resumed_from"] == "full" and summary["step"] == 3


def test_max_minutes_stops_with_checkpoint(tmp_path, video_vae_run, pointmap_vae_run):
    summary = train_dit(dit_config(tmp_path, video_vae_run, pointmap_vae_run, steps=1000, max_minutes=0.0), plane_scenes)
    assert not summary["finished"] and summary["step"] == 2  # stops at the first check (log_every = 2)
    assert (tmp_path / "state" / "progress.json").exists() and (tmp_path / "model" / "training.json").exists()


def test_export_round_trip_and_sampling(exported_run, video_vae_run):
    dit_run, folder = exported_run
    pipeline = Sora3RPipeline.from_pretrained(folder, "cpu", torch.float32)
    config = pipeline.config
    assert config["num_frames"] == FRAMES and config["squash"] is True and config["sampler_steps"] == 4
    assert pipeline.video_vae.config.scaling_factor == build_vae(video_vae_run[0] / "model").config.scaling_factor
    assert all(f.stat().st_size < 15.5e6 for f in folder.rglob("*.safetensors"))
    expected = JointLatentTransformer.from_pretrained(dit_run / "model").state_dict()
    for a, b in zip(expected.values(), pipeline.transformer.state_dict().values()):  # bf16 in the bundle
        torch.testing.assert_close(a.to(torch.bfloat16).float(), b)
    with torch.no_grad():
        video_latent = encode_latents(pipeline.video_vae, rgb_to_model(plane_scenes(0, 1).rgb))
        latent = pipeline.sample_pointmap_latent(video_latent, 2, torch.Generator().manual_seed(0))
        assert latent.shape == video_latent.shape and torch.isfinite(latent).all()
        pointmap_vae = pipeline.pointmap_vae
        assert pointmap_vae.decode(latent / pointmap_vae.config.scaling_factor).sample.shape == (1, 3, FRAMES, SIZE, SIZE)
    with pytest.raises(ValueError, match="not a sora3r model folder"):
        Sora3RPipeline.from_pretrained(video_vae_run[0])


def test_export_averages_the_weights_of_several_transformers(tmp_path, exported_run, video_vae_run, pointmap_vae_run):
    """``--transformer A B``: the exported transformer holds the mean of A's and B's weights (a model soup), the clip
    shape read from A's training record; transformers of another architecture are refused."""
    dit_run = exported_run[0]
    run_weights = JointLatentTransformer.from_pretrained(dit_run / "model", torch_dtype=torch.float32)
    shifted = JointLatentTransformer.from_pretrained(dit_run / "model", torch_dtype=torch.float32)
    with torch.no_grad():
        for parameter in shifted.parameters():
            parameter.add_(1.0)
    shifted.save_pretrained(tmp_path / "shifted")
    vaes = ["--video-vae", str(video_vae_run[0] / "model"), "--pointmap-vae", str(pointmap_vae_run[0] / "model")]
    assert main(["train", "export", "--output", str(tmp_path / "soup"), *vaes, "--transformer", str(dit_run / "model"),
                 str(tmp_path / "shifted"), "--dtype", "float32"]) == 0
    soup = Sora3RPipeline.from_pretrained(tmp_path / "soup", "cpu", torch.float32).transformer.state_dict()
    for name, value in run_weights.named_parameters():
        torch.testing.assert_close(soup[name], value.detach() + 0.5)

    other = run_weights.deepened(run_weights.transformer.config.num_layers + 1)
    with pytest.raises(ValueError, match="model 1 has other parameters than model 0"):
        average_weights([run_weights, other])


def test_grow_layers_needs_a_transformer_to_deepen():
    with pytest.raises(ValueError, match="--grow-layers.*needs --init-transformer"):
        DiTConfig(grow_layers=8, **TINY)


def test_known_frames_need_two_latent_frames():
    with pytest.raises(ValueError, match="--known-frames-prob 0.5: needs clips of at least 5 frames"):
        DiTConfig(known_frames_prob=0.5, **{**TINY, "num_frames": 1})


def test_dit_continues_from_an_exported_transformer(tmp_path, video_vae_run, pointmap_vae_run, exported_run):
    """Training further from a model folder's transformer (how the bundled model grows across GPU sessions)."""
    bundle = exported_run[1]
    again = tmp_path / "again"
    train_dit(dit_config(again, video_vae_run, pointmap_vae_run, steps=2, checkpoint_mode="light", lr=0.0,
                         init_transformer=str(bundle / "transformer")), plane_scenes)
    start = JointLatentTransformer.from_pretrained(bundle / "transformer", torch_dtype=torch.float32).state_dict()
    for a, b in zip(start.values(), final_transformer(again).values()):  # lr 0: it starts (and stays) there
        torch.testing.assert_close(a, b)


def test_dit_grows_an_exported_transformer_and_resumes_the_grown_run(tmp_path, video_vae_run, pointmap_vae_run,
                                                                    exported_run):
    transformer = exported_run[1] / "transformer"
    layers = JointLatentTransformer.from_pretrained(transformer).transformer.config.num_layers
    grown = dict(init_transformer=str(transformer), grow_layers=layers + 2, checkpoint_mode="light", resume=True)
    train_dit(dit_config(tmp_path, video_vae_run, pointmap_vae_run, steps=2, **grown), plane_scenes)
    summary = train_dit(dit_config(tmp_path, video_vae_run, pointmap_vae_run, steps=4, **grown), plane_scenes)
    assert summary["resumed_from"] == "light" and summary["step"] == 4
    assert JointLatentTransformer.from_pretrained(tmp_path / "model").transformer.config.num_layers == layers + 2


@pytest.mark.slow
def test_dit_x_prediction_with_decoded_pointmap_and_camera_losses_learns(tmp_path, video_vae_run, pointmap_vae_run):
    config = dit_config(tmp_path, video_vae_run, pointmap_vae_run, steps=20, prediction="sample", patch_size=1,
                        pointmap_loss_weight=1.0, camera_loss_weight=0.5, decoded_loss_clips=2, replay_clips=6,
                        replay_batch_size=3)
    summary = train_dit(config, plane_scenes)
    curve = losses(tmp_path)
    assert summary["step"] == 20 and math.isfinite(curve[-1])
    assert sum(curve[-3:]) / 3 < 0.8 * sum(curve[:3]) / 3
    model = JointLatentTransformer.from_pretrained(tmp_path / "model")
    assert model.config.prediction_type == "sample" and model.transformer.config.patch_size == 1
    # Continuing it as a velocity model would silently change what the weights mean.
    with pytest.raises(ValueError, match="predicts sample"):
        train_dit(dit_config(tmp_path / "next", video_vae_run, pointmap_vae_run,
                             init_transformer=str(tmp_path / "model")), plane_scenes)


@pytest.mark.parametrize("squashed", [False, True])
def test_camera_motion_loss_measures_how_far_each_frame_camera_is_moved(squashed):
    """Zero for the target itself; a frame's points shifted by d (a camera moved by d) cost |d| / frames; points
    moved along their own rays (another depth, same camera) cost nothing."""
    batch = plane_scenes(0, 2)
    point_target = PointmapTarget(squash=squashed)
    target, valid = pointmap_to_model(batch.points, batch.c2w, batch.valid, point_target)
    rays = torch.linalg.inv(batch.K)[:, None].expand(2, FRAMES, 3, 3)  # the plane scenes' cameras do not rotate
    assert camera_motion_loss(target, target, valid, rays, point_target) < 1e-5
    points = point_target.decode(target.permute(0, 2, 3, 4, 1))
    shifted = points.clone()
    shifted[:, 3] += torch.tensor([0.03, 0.0, -0.04])
    encode = lambda p: point_target.encode_scale_free(p).permute(0, 4, 1, 2, 3)
    loss = camera_motion_loss(encode(shifted), target, valid, rays, point_target)
    assert abs(float(loss) - 0.05 / FRAMES) < 1e-4
    first_points, c2w = to_first_frame(batch.points, batch.c2w)
    _, scale = normalize_scale(first_points, batch.valid)
    centres = c2w[:, :, None, None, :3, 3] / scale[:, None, None, None, None]
    deeper = centres + 1.3 * (points - centres)
    assert camera_motion_loss(encode(deeper), target, valid, rays, point_target) < 1e-3


def test_dit_learns_known_frames_from_an_exported_transformer_and_resumes(tmp_path, video_vae_run, pointmap_vae_run,
                                                                          exported_run):
    """``--known-frames-prob``: the exported transformer is widened to known-frame inputs (its predictions unchanged,
    tests/test_models.py), trained with them through a replay pool, and the resumed run keeps the widened shape."""
    known = dict(init_transformer=str(exported_run[1] / "transformer"), known_frames_prob=0.5, replay_clips=6,
                 replay_batch_size=3, checkpoint_mode="light", resume=True)
    train_dit(dit_config(tmp_path, video_vae_run, pointmap_vae_run, steps=2, **known), plane_scenes)
    summary = train_dit(dit_config(tmp_path, video_vae_run, pointmap_vae_run, steps=4, **known), plane_scenes)
    assert summary["resumed_from"] == "light" and summary["step"] == 4 and math.isfinite(losses(tmp_path)[-1])
    model = JointLatentTransformer.from_pretrained(tmp_path / "model")
    assert model.config.known_frame_inputs
    assert model.transformer.config.in_channels == 3 * model.config.latent_channels + 1


def test_known_latents_are_the_leading_frames_normalised_alone(tmp_path, video_vae_run, pointmap_vae_run):
    """Clip j knows its first ``1 + j mod (t - 1)`` latent frames, encoded from those frames normalised on their own
    (as the stitching gives them), zeros after."""

    stage = DiTStage(dit_config(tmp_path, video_vae_run, pointmap_vae_run, known_frames_prob=1.0), torch.device("cpu"))
    batch = plane_scenes(0, 3)
    video, pointmap, known, count = stage.training_tensors(batch)
    latent_frames = pointmap.shape[2]
    assert count.tolist() == [1 + j % (latent_frames - 1) for j in range(3)]
    for j, frames in enumerate(count.tolist()):
        pixels = 1 + 4 * (frames - 1)
        target, _ = pointmap_to_model(batch.points[j:j + 1, :pixels], batch.c2w[j:j + 1, :pixels],
                                      batch.valid[j:j + 1, :pixels], PointmapTarget(squash=True))
        expected = encode_leading_latents(stage.pointmap_vae, target)[0]
        torch.testing.assert_close(known[j, :, :frames], expected, atol=1e-5, rtol=1e-4)
        assert known[j, :, frames:].abs().max() == 0
    if latent_frames > 2:  # a longer prefix alone is normalised differently from the whole clip's target
        assert not torch.allclose(known[1, :, :2], pointmap[1, :, :2], atol=1e-3)
