"""The `sora3r` command end to end: the tests run the real command (in a subprocess, or in-process for help pages) and
check what it wrote.

Good input: every output file exists and reloads with sensible content. Bad input: exit status 2, exactly one
line on stderr that names the offending path or name, no traceback, and no output (or temp) folder left behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from sora3r.data.video import write_video
from sora3r.export import read_npz
from sora3r.fs import OUTPUT_MARKER
from sora3r.geometry.projection import field_of_view
from shared_data import ICL, LADY_RUNNING

LADY_MP4 = LADY_RUNNING / "lady-running.mp4"
LADY_FRAMES = LADY_RUNNING
EXPORTED = ["reconstruction.npz", "points.ply", "scene.glb", "trajectory_tum.txt", "colmap", "depth.mp4",
            "depth_sheet.png", "depth", "intrinsics.txt"]

def sora3r(*args, cwd: Path, command: list[str] | None = None) -> subprocess.CompletedProcess:
    """Run ``sora3r ARGS`` (``python -m sora3r.cli`` unless ``command`` is given) in ``cwd``."""
    command = command or [sys.executable, "-m", "sora3r.cli"]
    return subprocess.run([*command, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def assert_user_error(result: subprocess.CompletedProcess, *mentions: str) -> str:
    """Exit status 2 and one stderr line that contains every one of ``mentions``; returns that line."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    for text in mentions:
        assert text in lines[0], lines[0]
    return lines[0]


def assert_nothing_written(folder: Path, inputs: set[str]) -> None:
    """Only the test's own inputs remain in ``folder``: no output folder, no hidden temp folder or file."""
    assert {p.name for p in folder.iterdir()} == inputs


def check_exports(out: Path, num_frames: int) -> None:
    for name in EXPORTED:
        assert (out / name).exists(), name
    assert {p.name for p in (out / "colmap").iterdir()} == {"cameras.txt", "images.txt", "points3D.txt", "images"}
    assert len(list((out / "colmap" / "images").glob("*.png"))) == num_frames
    assert len(list((out / "depth").glob("*.png"))) == num_frames and (out / "depth" / "depth_scale.json").is_file()
    assert iio.improps(out / "depth.mp4", plugin="pyav").shape[0] == num_frames
    poses = np.loadtxt(out / "trajectory_tum.txt")
    assert poses.shape == (num_frames, 8) and np.isfinite(poses).all()
    np.testing.assert_allclose(np.linalg.norm(poses[:, 4:], axis=1), 1.0, atol=1e-6)  # unit quaternions
    rec = read_npz(out / "reconstruction.npz")
    t, h, w = rec.points.shape[:3]
    assert t == num_frames and rec.rgb.shape == (t, h, w, 3) and rec.depth.shape == (t, h, w)
    assert rec.c2w.shape == (t, 4, 4) and rec.K.shape == (3, 3) and rec.valid.shape == (t, h, w)
    assert rec.valid.float().mean() > 0.5
    assert torch.isfinite(rec.points[rec.valid]).all() and (rec.depth[rec.valid] > 0).all()
    # Outputs get the permissions of an ordinary file under the current umask, not a temp file's 0600.
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "points.ply").stat().st_mode & 0o777 == 0o666 & ~umask
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask


@pytest.mark.slow
def test_demo_writes_everything_and_scores_against_references(tmp_path):
    result = sora3r("demo", "-o", "out", cwd=tmp_path)
    assert_ok(result)
    out = tmp_path / "out"
    check_exports(out, num_frames=17)
    for name in ["ground_truth.npz", "input.mp4", "trajectory.png", "depth.png", "metrics.json"]:
        assert (out / name).stat().st_size > 0, name
    # The table says which way each metric is better: higher for delta<1.25 only.
    assert result.stdout.count("lower is") == 4 and result.stdout.count("higher is") == 1
    header = next(line for line in result.stdout.splitlines() if "Abs Rel" in line)
    assert header.index("Abs Rel") < header.index("delta<1.25") < header.index("ATE")
    assert iio.improps(out / "input.mp4", plugin="pyav").shape[0] == 17

    rec, gt = read_npz(out / "reconstruction.npz"), read_npz(out / "ground_truth.npz")
    assert rec.points.shape == gt.points.shape and rec.rgb.shape == gt.rgb.shape
    torch.testing.assert_close(gt.c2w[0], torch.eye(4, dtype=gt.c2w.dtype))  # world = frame-0 camera

    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"sora3r", "oracle", "static"}
    oracle, static = metrics["oracle"], metrics["static"]
    assert oracle["abs_rel"] < 0.01 and oracle["ate"] < 1e-3 and oracle["delta_1.25"] > 0.99
    assert static["abs_rel"] > 10 * oracle["abs_rel"] and static["ate"] > 0.1
    assert all(np.isfinite(metrics["sora3r"][key]) for key in ("abs_rel", "ate", "rpe_trans", "rpe_rot"))
    # the bundled model on its default clip (bundle of 2026-12-02, thirteenth session): Abs Rel 0.073 vs static
    # 0.529, ATE 0.041 vs 1.40
    assert metrics["sora3r"]["abs_rel"] < static["abs_rel"] / 2 and metrics["sora3r"]["ate"] < static["ate"] / 5

    # A second run into the same folder is refused without --overwrite, and leaves the folder as it was.
    before = sorted(p.name for p in out.iterdir())
    assert_user_error(sora3r("demo", "-o", "out", cwd=tmp_path), "out", "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == before


@pytest.mark.slow
def test_reconstruct_video_file_and_frame_folder(tmp_path):
    result = sora3r("reconstruct", LADY_MP4, "-o", "from_mp4", "--max-frames", 20, cwd=tmp_path)
    assert_ok(result)
    check_exports(tmp_path / "from_mp4", num_frames=20)
    rec = read_npz(tmp_path / "from_mp4" / "reconstruction.npz")
    assert rec.metadata["source"] == str(LADY_MP4)
    # The summary: frames, windows, grids, focal and field of view, samples, time; progress per window on stderr.
    summary = result.stdout
    assert "frames: 20 at the model's 96x64 (input 854x480)" in summary
    # windows start at 0 and 3 (= 20 - 17): the last window ends on the last frame, so the two share 14
    assert "windows: 2 windows of 17 frames, consecutive windows share 11 (the last two 14, so that the last window " \
           "ends on the last frame)" in summary
    fov_x, fov_y = field_of_view(rec.K, 64, 96)
    assert f"focal: {rec.K[0, 0].item():.1f} px on the model's grid" in summary
    assert f"field of view {fov_x:.1f} deg horizontal x {fov_y:.1f} deg vertical" in summary
    assert "samples: 1 per window, 4 steps, seed 0" in summary and re.search(r"time: \d+\.\d s", summary)
    assert "sampling windows: 100%" in result.stderr and "2/2" in result.stderr

    # The installed entry point, on the jpg folder, with known intrinsics (pixels of the 854x480 input).
    entry_point = shutil.which("sora3r")
    assert entry_point, "the sora3r console script is not installed (pip install -e .)"
    K_in = np.array([[500.0, 0.0, 427.0], [0.0, 510.0, 240.0], [0.0, 0.0, 1.0]])
    result = sora3r("reconstruct", LADY_FRAMES, "-o", "from_jpg", "--max-frames", 20, "--stride", 2,
                    "--intrinsics", 500, 510, 427, 240, "--formats", "npz", "tum", cwd=tmp_path, command=[entry_point])
    assert_ok(result)
    assert "view with: sora3r view from_jpg/reconstruction.npz" in result.stdout
    out = tmp_path / "from_jpg"
    assert {p.name for p in out.iterdir()} == {"reconstruction.npz", "trajectory_tum.txt", OUTPUT_MARKER}
    assert np.loadtxt(out / "trajectory_tum.txt").shape == (20, 8)
    rec = read_npz(out / "reconstruction.npz")
    affine = np.array(rec.metadata["crop_affine"])
    np.testing.assert_allclose(rec.K.double().numpy(), affine @ K_in, rtol=1e-5)
    assert rec.points.shape[:3] == (20, 64, 96)


@pytest.mark.slow
def test_formats_without_npz_do_not_suggest_viewing_it(tmp_path):
    result = sora3r("reconstruct", LADY_MP4, "-o", "out", "--max-frames", 17, "--formats", "ply", cwd=tmp_path)
    assert_ok(result)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [OUTPUT_MARKER, "points.ply"]
    assert "wrote ply to out" in result.stdout and "sora3r view" not in result.stdout


@pytest.mark.parametrize("args", [
    ["synth", "-o", "out", "--num", 1000, "--height", 64, "--width", 64],
    ["reconstruct", LADY_MP4, "-o", "out", "--max-frames", 17],
], ids=["synth", "reconstruct"])
def test_sigterm_unwinds_like_ctrl_c_and_leaves_nothing(tmp_path, args):
    """`timeout`, Slurm and `docker stop` send SIGTERM: the run stops, its temporary output folder is removed."""
    process = subprocess.Popen([sys.executable, "-m", "sora3r.cli", *map(str, args)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".out.") for p in tmp_path.iterdir()):  # the job has started writing
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the command never started its output"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-3000:]
    assert "Traceback" not in stderr and stderr.splitlines()[-1].endswith(f"sora3r {args[0]}: terminated")
    assert_nothing_written(tmp_path, set())


def test_synth_writes_clips_with_ground_truth(tmp_path):
    assert_ok(sora3r("synth", "-o", "clips", "--num", 2, "--frames", 9, "--height", 32, "--width", 48, cwd=tmp_path))
    clips = sorted(p for p in (tmp_path / "clips").iterdir() if p.name != OUTPUT_MARKER)
    assert len(clips) == 2
    for clip in clips:
        assert {p.name for p in clip.iterdir()} == {"rgb.mp4", "ground_truth.npz"}
        assert iio.improps(clip / "rgb.mp4", plugin="pyav").shape == (9, 32, 48, 3)
        gt = read_npz(clip / "ground_truth.npz")
        assert gt.points.shape == (9, 32, 48, 3) and gt.c2w.shape == (9, 4, 4)
        assert (gt.depth[gt.valid] > 0).all()


@pytest.mark.slow
def test_eval_oracle_is_near_perfect_and_static_is_not(tmp_path):
    # Five frames keep the oracle's full-resolution (640x480) camera recovery to a few seconds on CPU.
    clip = ["--dataset", "icl-micro", "--root", ICL, "--option", "num_frames=5"]
    summaries = {}
    for method in ("oracle", "static"):
        assert_ok(sora3r("eval", "--method", method, *clip, "-o", method, cwd=tmp_path))
        out = tmp_path / method
        assert {"summary.json", "per_sequence.json", "results.md", "plots"} <= {p.name for p in out.iterdir()}
        summaries[method] = json.loads((out / "summary.json").read_text())
        assert summaries[method]["num_sequences"] == 1 and summaries[method]["num_failed"] == 0
    oracle, static = summaries["oracle"], summaries["static"]
    assert oracle["ate"] < 1e-4 and oracle["rpe_rot"] < 1e-2 and oracle["abs_rel"] < 1e-3
    assert static["ate"] > 0.01 and static["abs_rel"] > 0.05


def _bad_inputs(folder: Path) -> dict[str, tuple[list, list[str]]]:
    """Inputs written into ``folder``; ``{case: (arguments, texts the error line must contain)}``. Every case
    writes to ``out`` (replaced by a per-case name when run)."""
    (folder / "empty.mp4").touch()
    (folder / "corrupt.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes())
    (folder / "no_images").mkdir()
    (folder / "no_images" / "notes.txt").write_text("not a frame")
    write_video(folder / "short.mp4", np.zeros((5, 64, 96, 3), np.uint8))
    # Two MPEG-TS segments of different sizes, concatenated: a stream whose frame size changes midway.
    for name, (h, w) in {"a.ts": (64, 96), "b.ts": (80, 120)}.items():
        iio.imwrite(folder / name, np.zeros((6, h, w, 3), np.uint8), plugin="pyav", extension=".ts",
                    codec="libx264", fps=10)
    (folder / "resized.ts").write_bytes((folder / "a.ts").read_bytes() + (folder / "b.ts").read_bytes())
    (folder / "a.ts").unlink()
    (folder / "b.ts").unlink()
    (folder / "not_a_model").mkdir()
    (folder / "not_a_model" / "model_index.json").write_text("{}")
    video = ["reconstruct", LADY_MP4, "-o", "out", "--max-frames", 17]
    return {
        "missing video": (["reconstruct", "missing.mp4", "-o", "out"], ["missing.mp4", "no such"]),
        "empty video": (["reconstruct", "empty.mp4", "-o", "out"], ["empty.mp4", "empty"]),
        "corrupt video": (["reconstruct", "corrupt.mp4", "-o", "out"], ["corrupt.mp4", "not a readable video"]),
        "folder without images": (["reconstruct", "no_images", "-o", "out"], ["no_images", "no jpg/"]),
        "too few frames": (["reconstruct", "short.mp4", "-o", "out"], ["short.mp4", "5 frames", "at least 17"]),
        "too few frames kept": ([*video[:-1], 3, "--stride", 2],
                                [str(LADY_MP4), "3 frames with --stride 2 --max-frames 3", "at least 17"]),
        "frame size changes": (["reconstruct", "resized.ts", "-o", "out"], ["resized.ts", "frame 6", "120x80"]),
        "missing model folder": ([*video, "--model", "no_model"], ["no_model", "no such model folder"]),
        "incomplete model folder": ([*video, "--model", "not_a_model"], ["not_a_model", "transformer/config.json"]),
        "unknown dataset": (["eval", "--method", "oracle", "--dataset", "nope", "-o", "out"], ["'nope'", "unknown"]),
        "unknown method": (["eval", "--method", "nope", "--dataset", "icl-micro", "--root", ICL, "-o", "out"],
                           ["'nope'", "unknown method"]),
        "missing dataset root": (["eval", "--method", "oracle", "--dataset", "icl-micro", "--root", "no_data",
                                  "-o", "out"], ["no_data"]),
        "missing npz to view": (["view", "missing.npz"], ["missing.npz", "no such file"]),
        "view a non-npz": (["view", "corrupt.mp4"], ["corrupt.mp4: not an npz bundle (not a zip archive)"]),
        "view a folder": (["view", "no_images"], ["no_images: is a folder (an npz file is needed)"]),
    }


@pytest.mark.slow
def test_bad_input_gives_one_line_and_leaves_nothing(tmp_path):
    cases = _bad_inputs(tmp_path)
    inputs = {p.name for p in tmp_path.iterdir()}

    def run(index: int, args: list) -> subprocess.CompletedProcess:
        # Each case has its own output folder, so that cases can run side by side (most time is Python start-up).
        return sora3r(*(f"out_{index}" if arg == "out" else arg for arg in args), cwd=tmp_path)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(run, range(len(cases)), [args for args, _ in cases.values()]))
    for (case, (args, mentions)), result in zip(cases.items(), results):
        line = assert_user_error(result, *mentions)
        assert line.startswith(f"sora3r {args[0]}: error: "), (case, line)
    assert_nothing_written(tmp_path, inputs)


@pytest.mark.slow
def test_nan_model_output_is_a_clear_error(tmp_path):
    from safetensors.torch import load_file, save_file

    from sora3r.pipeline import BUNDLED_MODEL

    model = tmp_path / "nan_model"
    shutil.copytree(BUNDLED_MODEL, model)
    weights = model / "pointmap_vae" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    state["decoder.conv_out.conv.bias"] = torch.full_like(state["decoder.conv_out.conv.bias"], float("nan"))
    save_file(state, weights, metadata={"format": "pt"})

    result = sora3r("reconstruct", LADY_MP4, "-o", "out", "--max-frames", 17, "--model", model, cwd=tmp_path)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nan_model" in lines[-1] and "NaN" in lines[-1], lines[-1]
    assert_nothing_written(tmp_path, {"nan_model"})


def _command_configs() -> dict[str, type]:
    """``{"sora3r COMMAND [STAGE]": dataclass}`` for every command and training stage."""
    import importlib

    from sora3r.cli import COMMANDS
    from sora3r.train import STAGES

    configs = {}
    for name, (location, _) in COMMANDS.items():
        if name != "train":
            module, attribute = location.split(":")
            configs[f"sora3r {name}"] = getattr(importlib.import_module(module), attribute)
    configs.update({f"sora3r train {name}": config for name, (config, _) in STAGES.items()})
    return configs


def _help_page(capsys, *args: str) -> str:
    """The ``--help`` page of ``sora3r ARGS``, whitespace collapsed and box lines removed; it must exit 0."""
    from sora3r.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--help"])
    assert exit_info.value.code in (0, None)
    return " ".join(capsys.readouterr().out.replace("│", " ").split())


def test_every_option_is_documented_in_its_help_page(capsys):
    """Each field of each command's and stage's dataclass is an option whose help (its comment or docstring, as tyro
    reads it) appears on that command's --help page."""
    import dataclasses

    from tyro._docstrings import get_field_docstring

    from sora3r.options import option_name

    configs = _command_configs()
    assert len(configs) == 10  # demo reconstruct view app eval synth + video-vae pointmap-vae dit export
    for command, config in configs.items():
        page = _help_page(capsys, *command.split()[1:])
        for field in dataclasses.fields(config):
            text = get_field_docstring(config, field.name, ())
            assert text and len(text.split()) >= 2, f"{command} {field.name} has no help text"
            assert " ".join(text.split()) in page, (command, field.name)
            positional = field.name in ("video", "reconstruction")
            assert (field.name.upper() if positional else option_name(field.name)) in page, (command, field.name)


def test_help_of_the_command_and_of_training(capsys):
    page = _help_page(capsys)
    assert all(name in page for name in ("demo", "reconstruct", "view", "app", "eval", "synth", "train"))
    assert "COMMAND --help" in page
    page = _help_page(capsys, "train")
    assert all(name in page for name in ("video-vae", "pointmap-vae", "dit", "export"))
    page = _help_page(capsys, "train", "dit")
    from sora3r.eval.methods import METHODS
    from sora3r.models.transformer import TRANSFORMER_PRESETS
    from sora3r.train import DiTConfig

    # Defaults and choices come from the config and the registries (here the transformer presets).
    assert f"--steps INT total optimisation steps of the run (a resumed run continues up to it) (default: " \
           f"{DiTConfig().steps})" in page
    assert f"--preset {{{','.join(TRANSFORMER_PRESETS)}}}" in page and "--squash, --no-squash" in page
    page = _help_page(capsys, "eval")
    assert f"{{{','.join(METHODS)}}}" in page and "icl-micro" in page


def test_plain_help_does_not_load_the_library():
    """`sora3r --help` imports only the command table, not torch or the training code."""
    code = ("import sys; from sora3r.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'sora3r.train' not in sys.modules, sorted(sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_user_error_does_not_wait_for_the_exporters(tmp_path):
    """`sora3r reconstruct missing.mp4` says so without importing trimesh (1-1.3 s of its 3.5-4 s on the 2-core CPU,
    measured 2026-12-02): the exporters import it only when they write a PLY or GLB."""
    code = ("import sys; from sora3r.cli import main\n"
            "assert main(['reconstruct', 'missing.mp4', '-o', 'out']) == 2\n"
            "assert 'trimesh' not in sys.modules, 'trimesh imported'")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "missing.mp4: no such video file" in result.stderr and list(tmp_path.iterdir()) == []


def test_a_multi_line_option_help_reads_as_one_paragraph(capsys, monkeypatch):
    """A docstring that spans source lines is one paragraph on the help page, wrapped to the terminal only (tyro left
    every source line break of an indented field docstring in place: "... tum =" at a line's end)."""
    monkeypatch.setenv("COLUMNS", "400")
    from sora3r.cli import main

    with pytest.raises(SystemExit):
        main(["reconstruct", "--help"])
    lines = [line.replace("│", " ").strip() for line in capsys.readouterr().out.splitlines()]
    formats = [line for line in lines if line.startswith("what to write:")]
    # "colmap =" ends one source line and "colmap/ (text model + images)" starts the next.
    assert len(formats) == 1 and "colmap = colmap/ (text model + images)" in formats[0]
