"""Training data sources: the prefetching synthetic source gives exactly the batches of the plain one."""

from dataclasses import asdict

import torch

from sora3r.train.data import synthetic_source


def test_prefetching_workers_give_the_same_batches():
    plain = synthetic_source(9, 16, 24, "cpu")
    prefetching = synthetic_source(9, 16, 24, "cpu", workers=2)
    for step in (0, 1, 5, 2):  # in order, a jump forwards (resume), a jump backwards
        expected, got = asdict(plain(step, 2)), asdict(prefetching(step, 2))
        assert expected.keys() == got.keys()
        for key in expected:
            assert torch.equal(expected[key], got[key]), (step, key)
    assert not torch.equal(plain(0, 2).rgb, plain(1, 2).rgb)


def test_mixed_preset_alternates_default_and_realistic_steps():
    """``preset="mixed"``: even steps are the default preset's batches, odd steps the realistic preset's, the same
    with prefetching workers (which draw each step's scenes with that step's preset)."""
    default, realistic = synthetic_source(9, 16, 24, "cpu"), synthetic_source(9, 16, 24, "cpu", preset="realistic")
    mixed, prefetching = (synthetic_source(9, 16, 24, "cpu", preset="mixed", workers=workers) for workers in (0, 1))
    for step, expected in ((0, default), (3, realistic), (2, default), (1, realistic)):
        want = expected(step, 2).rgb
        assert torch.equal(mixed(step, 2).rgb, want) and torch.equal(prefetching(step, 2).rgb, want), step


def test_training_on_a_real_dataset_folder(tmp_path):
    """`sora3r train ... --datasets tartanair=ROOT` trains on clips read from a TartanAir-layout folder."""
    import json

    import numpy as np
    from PIL import Image

    from sora3r.cli import main
    from sora3r.train.data import parse_dataset_spec
    from test_datasets_train import ned_pose_line, random_cameras, render_box_depth

    rng = np.random.default_rng(0)
    K = np.array([[320.0, 0, 320.0], [0, 320.0, 240.0], [0, 0, 1]])
    c2w = random_cameras(12, rng)
    depth = render_box_depth(K, c2w, 480, 640)
    traj = tmp_path / "tartanair" / "office" / "office" / "Easy" / "P000"
    (traj / "image_left").mkdir(parents=True)
    (traj / "depth_left").mkdir()
    for t in range(12):
        Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(traj / "image_left" / f"{t:06d}_left.png")
        np.save(traj / "depth_left" / f"{t:06d}_left_depth.npy", depth[t])
    (traj / "pose_left.txt").write_text("\n".join(ned_pose_line(p) for p in c2w) + "\n")

    assert parse_dataset_spec(f"tartanair={tmp_path}/tartanair:2") == {"tartanair": (f"{tmp_path}/tartanair", 2.0)}
    run = tmp_path / "run"
    assert main(["train", "pointmap-vae", "--output", str(run), "--datasets", f"tartanair={tmp_path / 'tartanair'}",
                 "--num-frames", "9", "--height", "16", "--width", "16", "--steps", "2", "--batch-size", "1",
                 "--log-every", "1", "--checkpoint-mode", "light"]) == 0
    losses = [json.loads(line)["loss"] for line in (run / "loss.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(np.isfinite(losses))
    with __import__("pytest").raises(ValueError, match="NAME=ROOT"):
        parse_dataset_spec("nope=/x")
