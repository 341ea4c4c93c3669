"""The repo's scripts and benchmarks that tests check, loaded as modules: benchmarks import each other's helpers by
bare name, so the script's folder is on ``sys.path`` while it loads."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_repo_module(folder: str, name: str) -> ModuleType:
    """``<repo>/<folder>/<name>.py`` (e.g. ``benchmarks``, ``bench_rotation``) as a module named ``name``."""
    directory = str(ROOT / folder)
    sys.path.insert(0, directory)
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(directory)
