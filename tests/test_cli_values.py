"""Every option's value is checked before any work: a bad one gives exit status 2, one line on stderr that names the
option and the value, and nothing written. The same checks hold for configs made from Python."""

from __future__ import annotations

import math

import pytest
import torch

from sora3r.cli import main
from shared_data import ICL, LADY_RUNNING

LADY_MP4 = str(LADY_RUNNING / "lady-running.mp4")
RECONSTRUCT = ["reconstruct", LADY_MP4, "-o", "out"]
EVAL = ["eval", "--method", "oracle", "--dataset", "icl-micro", "--root", str(ICL), "-o", "out"]
DIT = ["train", "dit", "--output", "run"]

# (arguments, texts the error line must hold)
BAD_VALUES = [
    ([*RECONSTRUCT, "--intrinsics", "0", "0", "400", "250"], ["--intrinsics 0 0 400 250", "positive"]),
    ([*RECONSTRUCT, "--intrinsics", "-600", "-500", "400", "250"], ["--intrinsics -600 -500 400 250", "positive"]),
    ([*RECONSTRUCT, "--intrinsics", "nan", "nan", "400", "250"], ["--intrinsics nan nan 400 250", "finite"]),
    ([*RECONSTRUCT, "--intrinsics", "500", "500", "400"], ["--intrinsics 500 500 400: expected FX FY CX CY"]),
    ([*RECONSTRUCT, "--device", "tpu9"], ["--device tpu9", "not a torch device"]),
    ([*RECONSTRUCT, "--steps", "0"], ["--steps 0", "at least 1"]),
    ([*RECONSTRUCT, "--steps", "four"], ["--steps four: not an integer"]),
    ([*RECONSTRUCT, "--stride", "1.5"], ["--stride 1.5: not an integer"]),
    ([*RECONSTRUCT, "--overlap", "17"], ["--overlap 17", "less than the model's window of 17 frames"]),
    ([*RECONSTRUCT, "--model", "inputs"], ["inputs: not a sora3r model folder"]),
    ([*EVAL, "--overlap", "20"], ["--overlap 20", "window of 17"]),
    (["demo", "--overlap", "17"], ["--overlap 17"]),
    ([*RECONSTRUCT, "--seed", str(2**70)], [f"--seed {2**70}", "at most 4294967295"]),
    ([*RECONSTRUCT, "--seed", "-1"], ["--seed -1", "at least 0"]),
    ([*RECONSTRUCT, "--stride", "0"], ["--stride 0", "at least 1"]),
    ([*RECONSTRUCT, "--max-frames", "-3"], ["--max-frames -3", "at least 1"]),
    ([*RECONSTRUCT, "--formats", "npz", "obj"], ["--formats 'obj'", "npz, ply, glb, tum, colmap"]),
    ([*RECONSTRUCT, "--formats", "npz,ply"], ["--formats 'npz,ply'", "separate several with spaces"]),
    ([*RECONSTRUCT, "--intrinsics", "740", "740", "5000", "240"],
     ["--intrinsics 740 740 5000 240", "principal point CX CY must lie in the 854x480 input frames"]),
    ([*DIT, "--known-frames-prob", "1.5"], ["--known-frames-prob 1.5", "at most 1"]),
    ([*RECONSTRUCT, "--frobnicate"], ["unrecognized arguments: --frobnicate", "sora3r reconstruct --help"]),
    (["reconstruct", LADY_MP4], ["missing --output"]),
    (["reconstruct", LADY_MP4, "-0", "z"], ["unrecognized arguments: -0 z; missing --output"]),
    ([*EVAL, "--option", "foo=3"], ["--option foo=3", "num_frames, stride, start"]),
    ([*EVAL, "--option", "num_frames=many"], ["--option num_frames=many", "an integer"]),
    ([*EVAL, "--option", "num_frames"], ["--option num_frames", "KEY=VALUE"]),
    ([*EVAL, "--max-sequences", "0"], ["--max-sequences 0", "at least 1"]),
    ([*EVAL, "--depth-align", "median"], ["--depth-align 'median'", "scale&shift"]),
    (["eval", "--method", "oracle", "--dataset", "icl-micro", "-o", "out"], ["--root", "icl-micro"]),
    (["view", "rec.npz", "--port", "0"], ["--port 0", "at least 1"]),
    (["view", "rec.npz", "--port", "65536"], ["--port 65536", "at most 65535"]),
    (["view", "rec.npz", "--stride", "0"], ["--stride 0"]),
    (["synth", "-o", "out", "--num", "0"], ["--num 0"]),
    (["synth", "-o", "out", "--frames", "-1"], ["--frames -1"]),
    (["synth", "-o", "out", "--width", "0"], ["--width 0"]),
    (["synth", "-o", "out", "--split", "dev"], ["--split 'dev'", "test, val, train"]),
    (["demo", "--clip", "10000"], ["--clip 10000", "less than 10000"]),
    (["demo", "--steps", "0"], ["--steps 0"]),
    (["nope"], ["nope"]),
    ([], ["demo, reconstruct, view, app, eval, synth, train"]),
    (["train", "video-vae", "--output", "run", "--height", "50"], ["--height 50", "multiple of 16"]),
    (["train", "video-vae", "--output", "run", "--preset", "base"], ["--preset 'base'", "tiny, mini, small, paper"]),
    ([*DIT, "--steps", "0"], ["--steps 0"]),
    ([*DIT, "--num-frames", "16"], ["--num-frames 16", "8k+1"]),
    ([*DIT, "--width", "0"], ["--width 0"]),
    ([*DIT, "--batch-size", "0"], ["--batch-size 0"]),
    ([*DIT, "--checkpoint-every", "0"], ["--checkpoint-every 0"]),
    ([*DIT, "--log-every", "0"], ["--log-every 0"]),
    ([*DIT, "--max-minutes", "-1"], ["--max-minutes -1"]),
    ([*DIT, "--data-workers", "-2"], ["--data-workers -2"]),
    ([*DIT, "--lr", "nan"], ["--lr nan", "finite"]),
    ([*DIT, "--lr", "fast"], ["--lr fast: not a number"]),
    ([*DIT, "--lr", "-0.1"], ["--lr -0.1", "at least 0"]),
    ([*DIT, "--ema-decay", "1"], ["--ema-decay 1", "less than 1"]),
    ([*DIT, "--seed", str(2**70)], ["--seed"]),
    ([*DIT, "--replay-batch-size", "0"], ["--replay-batch-size 0"]),
    ([*DIT, "--checkpoint-mode", "partial"], ["--checkpoint-mode 'partial'", "full, light, both"]),
    ([*DIT, "--datasets", "tum=data:heavy"], ["--datasets", "WEIGHT"]),
    ([*DIT, "--datasets", "imagenet=data"], ["--datasets", "NAME=ROOT"]),
    ([*DIT, "--datasets", "tum=no_data"], ["--datasets tum=no_data", "no such folder"]),
    ([*DIT, "--video-vae", "/nope"], ["--video-vae /nope", "no such folder"]),
    (["train", "pointmap-vae", "--output", "run", "--init-video-vae", "inputs"], ["--init-video-vae inputs",
                                                                                 "no config.json"]),
    (["train", "export", "--output", "model", "--video-vae", "a", "--pointmap-vae", "b", "--transformer", "c"],
     ["--video-vae a", "no such folder"]),
    (["train", "export", "--output", "model"], ["missing --video-vae, --pointmap-vae, --transformer"]),
]
if not torch.cuda.is_available():
    BAD_VALUES.append(([*RECONSTRUCT, "--device", "cuda"], ["--device cuda", "no cuda device"]))


@pytest.mark.parametrize("args, mentions", BAD_VALUES, ids=[" ".join(args[:4])[:60] + f"-{i}"
                                                           for i, (args, _) in enumerate(BAD_VALUES)])
def test_bad_value_is_one_line_and_nothing_is_written(args, mentions, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inputs").mkdir()  # a folder that exists but holds no model
    assert main(args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    prog = " ".join(["sora3r", *args[:1]]) if args and args[0] != "nope" else "sora3r"
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for text in mentions:
        assert text in lines[0], lines[0]
    assert [p.name for p in tmp_path.iterdir()] == ["inputs"]


def test_configs_made_from_python_are_checked_too():
    from sora3r.commands import Reconstruct
    from sora3r.train import DiTConfig, VideoVAEConfig

    with pytest.raises(ValueError, match=r"--height 50: must be a multiple of 16"):
        VideoVAEConfig(height=50)
    with pytest.raises(ValueError, match=r"--timestep-sampling cosine: must be one of logit_normal, uniform"):
        DiTConfig(timestep_sampling="cosine")
    with pytest.raises(ValueError, match=r"--steps 0"):
        DiTConfig(steps=0)
    with pytest.raises(ValueError, match=r"--formats npz obj: must be one of"):
        Reconstruct(video="v.mp4", output="o", formats=("npz", "obj"))
    assert DiTConfig(max_minutes=0.0).max_minutes == 0.0  # stop at the first check: allowed
    # The principal point is checked against the input's size once the video is read (BAD_VALUES).
    assert Reconstruct(video=LADY_MP4, output="o", intrinsics=(500.0, 510.0, -3.0, 240.0)).intrinsics[2] == -3.0
    assert Reconstruct(video=LADY_MP4, output="o", formats=("npz", "tum", "npz")).formats == ("npz", "tum")
    with pytest.raises(FileNotFoundError, match=r"v.mp4: no such video file or image folder"):
        Reconstruct(video="v.mp4", output="o")


def test_value_problem_reads_the_annotations():
    from typing import Annotated, Literal

    from annotated_types import Ge, Interval, MultipleOf

    from sora3r.options import Count, Seed, value_problem

    assert value_problem(Count, 1) is None and value_problem(Count, 0) == "must be at least 1"
    assert value_problem(Count | None, None) is None and value_problem(Count | None, 0) == "must be at least 1"
    assert value_problem(Seed, 2**32 - 1) is None and value_problem(Seed, 2**32) == "must be at most 4294967295"
    assert value_problem(float, math.inf) == "must be a finite number"
    assert value_problem(Annotated[float, Ge(0)], math.nan) == "must be a finite number"
    assert value_problem(Annotated[int, Interval(gt=0, lt=3), MultipleOf(2)], 2) is None
    assert value_problem(Annotated[int, Interval(gt=0, lt=3), MultipleOf(2)], 1) == "must be a multiple of 2"
    assert value_problem(tuple[Literal["a", "b"], ...], ("a", "c")) == "must be one of a, b"
    assert value_problem(tuple[float, float], (1.0, math.nan)) == "must be a finite number"
