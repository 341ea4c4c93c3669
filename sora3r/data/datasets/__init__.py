"""Registry of dataset readers: a name -> a function ``(root, **kwargs) -> Iterator[VideoSequence]``.

Readers are imported only when used, so listing datasets costs nothing and a reader's dependencies are
needed only by its users. Each reader yields one `VideoSequence` at a time (lazy loading) in the package
conventions and applies its evaluation protocol's frame selection (see docs/datasets.md).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path

from sora3r.types import VideoSequence

DATASETS: dict[str, str] = {
    "tum": "sora3r.data.datasets.tum:iter_tum",
    "bonn": "sora3r.data.datasets.tum:iter_bonn",
    "sintel": "sora3r.data.datasets.sintel:iter_sintel",
    "scannet": "sora3r.data.datasets.scannet:iter_scannet",
    "kitti": "sora3r.data.datasets.kitti:iter_kitti",
    "icl-micro": "sora3r.data.datasets.icl:iter_icl",
    "synthetic": "sora3r.data.datasets.synthetic_test:iter_synthetic",
    "pointodyssey": "sora3r.data.datasets.pointodyssey:iter_pointodyssey",
    "tartanair": "sora3r.data.datasets.tartanair:iter_tartanair",
    "dynamic_replica": "sora3r.data.datasets.dynamic_replica:iter_dynamic_replica",
}


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(DATASETS)


def dataset_reader(name: str) -> Callable[..., Iterator[VideoSequence]]:
    """The reader function of dataset ``name`` (its module is imported now); its keywords are the dataset's options.

    Raises:
        ValueError: ``name`` is not registered.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    module_name, function_name = DATASETS[name].split(":")
    return getattr(importlib.import_module(module_name), function_name)


def iter_sequences(name: str, root: Path | str | None, **kwargs) -> Iterator[VideoSequence]:
    """The sequences of dataset ``name`` stored under ``root`` (reader-specific ``kwargs``).

    Raises:
        ValueError: ``name`` is not registered.
        FileNotFoundError: ``root`` or a file the reader needs is missing (raised at call time where the
            reader can check it before loading).
    """
    return dataset_reader(name)(Path(root) if root is not None else None, **kwargs)
