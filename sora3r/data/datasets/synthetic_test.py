"""The held-out synthetic test clips as a dataset (``split_seed("test", i)`` for ``i < num``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sora3r.types import VideoSequence


def iter_synthetic(
    root: Path | None = None,
    num: int = 8,
    num_frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
) -> Iterator[VideoSequence]:
    """Render test clip ``i`` for ``i`` in ``range(num)``; ``root`` is ignored, unset sizes keep the config defaults."""
    from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed

    sizes = {"num_frames": num_frames, "height": height, "width": width}
    config = SyntheticConfig(**{key: value for key, value in sizes.items() if value is not None})
    return (render_clip(split_seed("test", i), config) for i in range(num))
