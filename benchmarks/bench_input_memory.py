"""Peak memory (RSS) of reading an input against its resolution and length, and of the whole `sora3r reconstruct`.

Usage: python benchmarks/bench_input_memory.py [--no-reconstruct] [--work DIR]

Inputs, written once into a temporary folder: H.264 mp4s of 65 frames at 320x180 and 1920x1080 and of 257 frames
at 320x180, and a folder of 20 JPEGs of 6000x4000. Each measurement runs in a fresh Python process that imports
the package first and reports its own peak RSS (``ru_maxrss``):
- ``import``: the imports alone (torch, diffusers, the package), the floor of every row;
- ``baseline``: the unresized read of the same run, every frame decoded at full size, then resized to the model's
  64x96 (`read_video` + `resize_and_crop`, as `reconstruct` did before frames were resized on decode);
- ``on decode``: `load_video(..., size=(64, 96))`, each frame resized as it is decoded (what `reconstruct` does);
- ``reconstruct``: the whole command with the bundled model (read, sample, recover cameras, export npz).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_PEAK = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)"  # Linux: KiB
_IMPORTS = "import torch, diffusers, sora3r.pipeline, sora3r.data.video"
MODES = {
    "import": "pass",
    "baseline": "from sora3r.data.video import read_video, resize_and_crop\n"
                "resize_and_crop(read_video({path!r}), 64, 96)",
    "on decode": "from sora3r.data.video import load_video; load_video({path!r}, size=(64, 96))",
    "reconstruct": "from sora3r.cli import main; main(['reconstruct', {path!r}, '-o', {out!r}, '--formats', 'npz'])",
}


def _peak_rss(mode: str, path: Path, work: Path) -> int:
    """Peak RSS in bytes of a fresh process running ``mode`` on ``path``."""
    action = MODES[mode].format(path=str(path), out=str(work / f"out_{path.stem}_{mode.replace(' ', '_')}"))
    result = subprocess.run([sys.executable, "-c", f"{_IMPORTS}\n{action}\n{_PEAK}"], capture_output=True,
                            text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1])


def _write_inputs(work: Path) -> dict[str, Path]:
    import av
    from PIL import Image

    rng = np.random.default_rng(0)
    inputs = {}
    for frames, (width, height) in ((65, (320, 180)), (65, (1920, 1080)), (257, (320, 180))):
        path = work / f"{frames}x{width}x{height}.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            base = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
            for index in range(frames):
                image = np.repeat(np.repeat(np.roll(base, index, axis=1), 8, axis=0), 8, axis=1)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            container.mux(stream.encode())
        inputs[f"mp4, {frames} frames, {width}x{height}"] = path
    folder = work / "jpegs_6000x4000"
    folder.mkdir()
    small = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    for index in range(20):
        Image.fromarray(np.roll(small, index, axis=1)).resize((6000, 4000)).save(folder / f"{index}.jpg", quality=90)
    inputs["20 JPEGs, 6000x4000"] = folder
    return inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-reconstruct", action="store_true", help="measure the reading only")
    parser.add_argument("--work", type=Path, default=None, help="folder for the inputs (default: a temp folder)")
    args = parser.parse_args()
    modes = [mode for mode in MODES if not (args.no_reconstruct and mode == "reconstruct")]
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        inputs = _write_inputs(work)
        floor = _peak_rss("import", next(iter(inputs.values())), work)
        print(f"peak RSS, GiB (imports alone: {floor / 2**30:.2f})")
        print("| input | " + " | ".join(modes[1:]) + " |")
        print("|---|" + "---|" * (len(modes) - 1))
        for name, path in inputs.items():
            peaks = [_peak_rss(mode, path, work) / 2**30 for mode in modes[1:]]
            print(f"| {name} | " + " | ".join(f"{peak:.2f}" for peak in peaks) + " |", flush=True)


if __name__ == "__main__":
    main()
