"""The safe-overwrite rule: an output folder is replaced only when it is an earlier sora3r output, and never when it
is the working directory, an ancestor of it, an input or a folder holding an input (the user's files stay intact)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sora3r.fs import OUTPUT_MARKER, atomic_output_dir, check_output_dir
from shared_data import LADY_RUNNING
from test_cli import assert_ok, assert_user_error, sora3r


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A folder as a user has it: notes, a data folder, the input clip and a folder of frames."""
    (tmp_path / "notes.txt").write_text("my notes\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "table.csv").write_text("a,b\n1,2\n")
    shutil.copy(LADY_RUNNING / "lady-running.mp4", tmp_path / "clip.mp4")
    (tmp_path / "frames").mkdir()
    for name in sorted(p.name for p in LADY_RUNNING.glob("*.jpg"))[:17]:
        shutil.copy(LADY_RUNNING / name, tmp_path / "frames" / name)
    return tmp_path


def test_overwrite_never_touches_the_working_directory_or_the_input(user_folder):
    before = tree(user_folder)
    # The working directory itself (this deleted every file in it before).
    assert_user_error(sora3r("reconstruct", "clip.mp4", "-o", ".", "--overwrite", cwd=user_folder), ".",
                      "working directory")
    # An ancestor of the working directory.
    assert_user_error(sora3r("reconstruct", "../clip.mp4", "-o", "..", "--overwrite", cwd=user_folder / "data"),
                      "..", "working directory")
    # The input folder of frames (this replaced the frames by the outputs before).
    assert_user_error(sora3r("reconstruct", "frames", "-o", "frames", "--overwrite", cwd=user_folder), "frames",
                      "input")
    # A folder holding the input.
    (user_folder / "data" / "clip.mp4").write_bytes((user_folder / "clip.mp4").read_bytes())
    before = tree(user_folder)
    assert_user_error(sora3r("reconstruct", "data/clip.mp4", "-o", "data", "--overwrite", cwd=user_folder), "data",
                      "input")
    # A folder of the user's that sora3r did not write: refused as such, with or without --overwrite.
    for overwrite in (["--overwrite"], []):
        assert_user_error(sora3r("synth", "-o", "data", *overwrite, "--num", 1, "--frames", 9, "--height", 16,
                                 "--width", 16, cwd=user_folder), "data", OUTPUT_MARKER, "not a folder written")
    assert tree(user_folder) == before


def test_an_earlier_output_is_replaced_only_with_overwrite(tmp_path):
    args = ["synth", "-o", "clips", "--num", 1, "--frames", 9, "--height", 16, "--width", 16]
    assert_ok(sora3r(*args, cwd=tmp_path))
    out = tmp_path / "clips"
    assert (out / OUTPUT_MARKER).is_file()
    (out / "stale.txt").write_text("from an earlier run")
    assert_user_error(sora3r(*args, cwd=tmp_path), "clips", "--overwrite")
    assert (out / "stale.txt").exists()
    assert_ok(sora3r(*args, "--overwrite", cwd=tmp_path))
    assert not (out / "stale.txt").exists() and (out / OUTPUT_MARKER).is_file()
    assert {p.name for p in tmp_path.iterdir()} == {"clips"}  # no staging or moved-aside folder left


def test_check_output_dir_rules(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_output_dir(tmp_path / "new")  # does not exist: fine
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty")  # empty: fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        check_output_dir(tmp_path / "file", overwrite=True)
    with pytest.raises(FileExistsError, match="working directory"):
        check_output_dir(Path(tmp_path.anchor), overwrite=True)  # the file-system root holds the working directory
    # An input given as a file inside the output, or as the output itself.
    with pytest.raises(FileExistsError, match="input"):
        check_output_dir(tmp_path / "empty", inputs=[tmp_path / "empty" / "video.mp4"])
    # A run folder with the marker but a symlinked spelling of an input is still caught.
    (tmp_path / "link").symlink_to(tmp_path / "empty")
    with pytest.raises(FileExistsError, match="input"):
        check_output_dir(tmp_path / "link", inputs=[tmp_path / "empty"])


def test_failed_block_leaves_the_earlier_output_in_place(tmp_path):
    out = tmp_path / "out"
    with atomic_output_dir(out) as staging:
        (staging / "result.txt").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_output_dir(out, overwrite=True) as staging:
            (staging / "result.txt").write_text("second, unfinished")
            raise RuntimeError("interrupted")
    assert (out / "result.txt").read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_training_refuses_a_folder_it_did_not_write(tmp_path):
    run = tmp_path / "mine"
    run.mkdir()
    (run / "model").mkdir()
    (run / "model" / "thesis.tex").write_text("do not lose me")
    result = sora3r("train", "video-vae", "--output", run, "--steps", 1, "--num-frames", 9, "--height", 16,
                    "--width", 16, "--batch-size", 1, cwd=tmp_path)
    assert_user_error(result, str(run), OUTPUT_MARKER)
    assert tree(run) == {"model": None, "model/thesis.tex": b"do not lose me"}
