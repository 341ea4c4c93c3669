"""The app's sample clip: a held-out synthetic test scene rendered by `sora3r.data.synthetic` (no third-party video
ships with sora3r), written as an mp4 like any upload."""

from __future__ import annotations

from pathlib import Path

from sora3r.data.synthetic import SyntheticConfig, render_clip, split_seed
from sora3r.data.video import write_video

SAMPLE_INDEX = 5
"""Index in the test split: an outdoor scene with moving objects and a camera that travels (so the trajectory plot
has a path to show; test clip 2, for one, is a pure pan)."""
SAMPLE_CONFIG = SyntheticConfig(num_frames=33, height=128, width=192)
"""33 frames (two windows of the bundled model, or one with stride 2) at twice the bundled model's 64x96."""


def write_sample_clip(folder: str | Path) -> Path:
    """Render the sample scene and write it to ``folder/sample_<scene name>.mp4`` (H.264, at the scene's fps).

    Returns the path. Takes about a second on a 2-core CPU.
    """
    seq = render_clip(split_seed("test", SAMPLE_INDEX), SAMPLE_CONFIG)
    return write_video(Path(folder) / f"sample_{seq.name}.mp4", seq.rgb, fps=SAMPLE_CONFIG.fps)
