"""File-system helpers for everything sora3r writes: atomic files, atomic output folders, and the safe-overwrite rule.

Every folder the tool writes (a command's output folder, a training run folder, a model folder) carries a marker file,
``.sora3r-output.json``. An existing non-empty folder is only ever replaced (``overwrite``) or written into (a
training run) when it carries that marker, i.e. when it is an earlier output of this tool; and never when it is the
working directory, one of its ancestors, one of the command's inputs or a folder holding an input. These checks run
before any work, so a user learns of the clash at once and none of their files is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["OUTPUT_MARKER", "atomic_output_dir", "atomic_output_path", "check_output_dir", "mark_output_dir"]

OUTPUT_MARKER = ".sora3r-output.json"

PathLike = str | os.PathLike


def _creation_mode(directory: bool) -> int:
    """Permission bits a plain ``open``/``mkdir`` would give under the current umask (``mkstemp``/``mkdtemp``
    create private 0600/0700 entries, which would otherwise survive the rename)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


@contextlib.contextmanager
def atomic_output_path(path: PathLike) -> Iterator[Path]:
    """Yield a hidden temp path beside ``path`` (same suffix, parents created); when the block succeeds
    it is renamed onto ``path`` (``os.replace``), otherwise removed, so no half-written file remains."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _creation_mode(directory=False))
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def mark_output_dir(folder: PathLike, what: str) -> None:
    """Write the marker that lets a later run recognise ``folder`` as an output of sora3r (``what``: e.g. the
    command that wrote it)."""
    from sora3r import __version__

    marker = Path(folder) / OUTPUT_MARKER
    marker.write_text(json.dumps({"written_by": "sora3r", "version": __version__, "what": what}) + "\n")


def _is_marked(folder: Path) -> bool:
    try:
        return json.loads((folder / OUTPUT_MARKER).read_text()).get("written_by") == "sora3r"
    except (OSError, ValueError, AttributeError):
        return False


def check_output_dir(path: PathLike, overwrite: bool = False, inputs: Iterable[PathLike | None] = (),
                     option: str = "--overwrite") -> None:
    """Raise ``FileExistsError`` (naming ``path``) unless ``path`` may be written as an output folder.

    Allowed: a path that does not exist, an empty folder, or (only with ``overwrite``) a non-empty folder that
    carries the marker of an earlier sora3r output. Never allowed, with or without ``overwrite``: a path that is not
    a folder, the working directory or one of its ancestors, an input of the command (``inputs``) or a folder
    holding one.

    Args:
        path: the output folder.
        overwrite: whether replacing (or, for training runs, writing into) an earlier sora3r output is asked for.
        inputs: the files/folders the command reads (``None`` entries are skipped).
        option: the option that grants ``overwrite``, named in the error.
    """
    path = Path(path)
    resolved = path.resolve()
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path}: exists and is not a folder")
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise FileExistsError(f"{path}: is the working directory or holds it; choose a new folder for the output")
    for item in inputs:
        if item is None:
            continue
        item = Path(item).resolve()
        if item == resolved or resolved in item.parents:
            raise FileExistsError(f"{path}: is or holds the input {item}; choose another output folder")
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not _is_marked(path):  # said first: --overwrite would not help
        raise FileExistsError(f"{path}: not a folder written by sora3r (no {OUTPUT_MARKER}); refusing to replace it: "
                              "choose another output folder or remove it yourself")
    if not overwrite:
        raise FileExistsError(f"{path}: output folder exists and is not empty (pass {option} to replace an "
                              "earlier sora3r output)")


@contextlib.contextmanager
def atomic_output_dir(path: PathLike, overwrite: bool = False, inputs: Iterable[PathLike | None] = (),
                      what: str = "output") -> Iterator[Path]:
    """Yield a hidden temp folder beside ``path``; when the block succeeds it replaces ``path``, otherwise it is
    removed, so a failed run leaves neither ``path`` nor the temp folder behind.

    ``path`` is checked by :func:`check_output_dir` before the block runs (the caller learns of a clash before any
    work). The finished folder carries the sora3r output marker (``what`` is recorded in it). An earlier output at
    ``path`` is moved aside, the new one renamed into place, and only then the old one deleted.
    """
    path = Path(path)
    check_output_dir(path, overwrite, inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(staging, _creation_mode(directory=True))
    old = None
    try:
        yield staging
        mark_output_dir(staging, what)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        staging.rename(path)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
        if old is not None:
            if not path.exists() and (old / path.name).exists():  # the rename failed: put the old output back
                os.replace(old / path.name, path)
            shutil.rmtree(old, ignore_errors=True)
