"""`Workspace`: the one temporary folder the app writes into (sample clip, every run's outputs), removed on close.

Nothing the app makes goes into the user's folders: uploads land in Gradio's own cache (cleaned by the app's
``delete_cache`` setting), everything else under ``<system temp>/sora3r-app-XXXX/``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


class Workspace:
    """A private temporary folder with one sub-folder per reconstruction run.

    Args:
        keep_runs: how many run folders to keep; starting a run removes the oldest beyond that (their files have
            been handed to the browser by then), so a long-lived app does not fill the disk.
    """

    def __init__(self, keep_runs: int = 8):
        if keep_runs < 1:
            raise ValueError(f"keep_runs must be >= 1, got {keep_runs}")
        self.keep_runs = keep_runs
        self.root = Path(tempfile.mkdtemp(prefix="sora3r-app-"))
        self._runs: list[Path] = []

    def new_run(self) -> Path:
        """A fresh empty folder for one run's outputs."""
        while len(self._runs) >= self.keep_runs:
            shutil.rmtree(self._runs.pop(0), ignore_errors=True)
        run = Path(tempfile.mkdtemp(prefix="run-", dir=self.root))
        self._runs.append(run)
        return run

    def close(self) -> None:
        """Remove the folder and everything in it (safe to call twice)."""
        shutil.rmtree(self.root, ignore_errors=True)
        self._runs.clear()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
