"""Peak memory (RSS) and time of `sora3r reconstruct` against the video's length: memory should stay flat while time
grows linearly with the number of windows.

Usage: python benchmarks/bench_long_video.py [--lengths 100 250 500 1000] [--formats npz tum] [--steps N] [--work DIR]
    [--heaps default fixed]

One generated H.264 video (a 640x360 random texture panning one pixel a frame, as long as the longest length) is
written once; each length runs `sora3r reconstruct VIDEO --max-frames N` with the bundled model on the CPU in a fresh
Python process, which reports its own peak RSS (``ru_maxrss``) and the wall time of the command (imports excluded).
The table gives, per length, the windows, peak RSS, its change from the shortest length, seconds, seconds per window
and the peak RSS of each phase (RSS sampled every 20 ms: reading, the window loop, camera recovery, export); with
glibc malloc's default (``default``) and with its mmap threshold fixed at 128 KiB (``fixed``:
``MALLOC_MMAP_THRESHOLD_=131072`` in the command's environment, so that freed temporaries go back to the system instead
of staying in the heap; docs/memory.md has what it gives and costs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# The command in a fresh process, its RSS sampled every 20 ms (/proc/self/statm) under the phase it is in: the phases
# are marked by wrapping the pipeline's window loop and camera recovery.
_RUN = """
import os, resource, threading, time
import sora3r.pipeline as pipeline
from sora3r.cli import main
phase, peaks = ['read'], {{}}
def sample():
    page = os.sysconf('SC_PAGE_SIZE')
    while True:
        with open('/proc/self/statm') as statm:
            rss = int(statm.read().split()[1]) * page
        peaks[phase[0]] = max(peaks.get(phase[0], 0), rss)
        time.sleep(0.02)
def marked(function, name, after):
    def run(*args, **kwargs):
        phase[0] = name
        try:
            return function(*args, **kwargs)
        finally:
            phase[0] = after
    return run
pipeline.Sora3RPipeline._fused_pointmaps = marked(pipeline.Sora3RPipeline._fused_pointmaps, 'loop', 'camera')
pipeline.recover_cameras_streamed = marked(pipeline.recover_cameras_streamed, 'camera', 'export')
threading.Thread(target=sample, daemon=True).start()
started = time.perf_counter()
main(['reconstruct', {video!r}, '-o', {out!r}, '--max-frames', '{frames}', '--formats', *{formats!r}, *{extra!r}])
print('BENCH', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, time.perf_counter() - started,
      *(f'{{name}}={{peak}}' for name, peak in peaks.items()))
"""


def write_video(path: Path, frames: int, width: int = 640, height: int = 360) -> Path:
    """A panning random texture (coarse 8x8 blocks, so H.264 keeps it): ``frames`` frames at 30 fps."""
    from sora3r.data.video import encode_video

    base = np.random.default_rng(0).integers(0, 256, (height // 8, (width + frames) // 8 + 1, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(base, 8, axis=0), 8, axis=1)
    return encode_video(path, (texture[:height, index:index + width] for index in range(frames)), fps=30)


def measure(video: Path, frames: int, formats: list[str], extra: list[str], work: Path,
            heap: str) -> tuple[int, float, int, dict[str, int]]:
    """``(peak RSS in bytes, seconds, windows, {phase: peak RSS in bytes})`` of one fresh process reconstructing the
    first ``frames`` frames with the ``heap`` setting (``fixed`` or ``default``); phases: read (model load and
    reading), loop (the windows), camera (camera recovery), export (the rest and writing)."""
    from sora3r.export import read_npz

    out = work / f"out_{frames}_{heap}"
    code = _RUN.format(video=str(video), out=str(out), frames=frames, formats=formats, extra=extra)
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    if heap == "fixed":
        env["MALLOC_MMAP_THRESHOLD_"] = str(128 * 1024)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{frames} frames failed:\n{result.stderr[-2000:]}")
    _, peak, seconds, *phases = next(line for line in result.stdout.splitlines() if line.startswith("BENCH")).split()
    windows = len(read_npz(out / "reconstruction.npz").metadata["windows"]) if "npz" in formats else 0
    return int(peak), float(seconds), windows, {name: int(value) for name, value in (p.split("=") for p in phases)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 250, 500, 1000])
    parser.add_argument("--formats", nargs="+", default=["npz", "tum"], help="reconstruct --formats")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the video and outputs (default: temp)")
    parser.add_argument("--heaps", nargs="+", choices=["default", "fixed"], default=["default"],
                        help="glibc malloc settings to run: its default, and/or MALLOC_MMAP_THRESHOLD_=131072")
    args = parser.parse_args()
    extra = [] if args.steps is None else ["--steps", str(args.steps)]
    with tempfile.TemporaryDirectory() as temp:
        work = args.work or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        video = write_video(work / "long.mp4", max(args.lengths))
        print(f"sora3r reconstruct, formats {' '.join(args.formats)}, {extra or 'default steps'}, CPU\n")
        print("| heap | frames | windows | peak RSS (GiB) | vs first | seconds | s / window | peak by phase (MiB) |")
        print("|---|---|---|---|---|---|---|---|")
        for heap in args.heaps:
            first = None
            for frames in args.lengths:
                peak, seconds, windows, phases = measure(video, frames, args.formats, extra, work, heap)
                first = first or peak
                per_window = f"{seconds / windows:.2f}" if windows else "-"
                print(f"| {heap} | {frames} | {windows} | {peak / 2**30:.3f} | {100 * (peak / first - 1):+.1f} % | "
                      f"{seconds:.1f} | {per_window} | "
                      f"{', '.join(f'{name} {value / 2**20:.0f}' for name, value in phases.items())} |", flush=True)


if __name__ == "__main__":
    main()
