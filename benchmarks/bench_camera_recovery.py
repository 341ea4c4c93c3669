"""Speed and accuracy of camera recovery from pointmaps (`sora3r.geometry.recover_cameras`).

Usage: python benchmarks/bench_camera_recovery.py --device cpu|cuda [--frames 17 --height 384 --width 512]
       [--repeats 5] [--outliers 0.3] [--profile] [--compile MODE]

The clip is a synthetic scene (`sora3r.data.synthetic.render_batch`) with exact world-frame pointmaps; a second
copy has a fraction of its pixels replaced by points uniform in the scene's bounding box. The baseline, timed in
the same run on the same device, is `linear_cameras`: one plain weighted least-squares DLT per frame over the
same fit pixels, no robust steps. Times are medians over repeats after one warm-up call (CUDA: events after a
synchronize). Errors: focal relative to the truth, poses in the frame-0 world (largest rotation-entry or
translation / mean scene depth difference), depth median relative error on inlier pixels.

``--compile MODE`` adds rows for ``recover_cameras(compile_mode=MODE)`` (its Gauss-Newton iterations through
``torch.compile``), timed after a first call whose time (compiling included) is printed apart, with their ratio to
the eager ``recover_cameras`` of the same run; with ``--profile`` the compiled call is the one profiled.

``--profile`` then profiles one `recover_cameras` call on the outlier copy (torch.profiler): the ops that took the
most time (device time on CUDA), how many kernels were launched, and the synchronisations and copies between host
and device (a ``.item()`` on a CUDA tensor waits for it): whether the fit is bound by launches, syncs or arithmetic.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch

from sora3r.data.synthetic import SyntheticConfig, render_batch
from sora3r.geometry import CameraEstimate, linear_cameras, recover_cameras, to_first_frame


def median_seconds(call, device: torch.device, repeats: int, warm_up: bool = True) -> float:
    """Median seconds of ``repeats`` calls of ``call`` (after one warm-up call unless ``warm_up=False``): CUDA events
    on a GPU, the wall clock on the CPU."""
    if warm_up:
        call()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            call()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000.0)
        else:
            begin = time.perf_counter()
            call()
            times.append(time.perf_counter() - begin)
    return statistics.median(times)


def _errors(estimate: CameraEstimate, clip: dict, inlier: torch.Tensor) -> tuple[float, float, float]:
    points, c2w, K, depth = clip.points[0], clip.c2w[0], clip.K[0], clip.depth[0]
    focal = float((estimate.focal / K[0, 0] - 1).abs())
    _, est = to_first_frame(points, estimate.c2w)
    _, true = to_first_frame(points, c2w)
    rotation = (est[..., :3, :3] - true[..., :3, :3]).abs().max()
    translation = (est[..., :3, 3] - true[..., :3, 3]).norm(dim=-1).max() / depth.mean()
    depth_error = ((estimate.depth - depth).abs() / depth)[inlier].median()
    return focal, float(max(rotation, translation)), float(depth_error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--outliers", type=float, default=0.3, help="fraction of pixels replaced by garbage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="profile one call on the outlier copy")
    parser.add_argument("--compile", default=None, help="also time recover_cameras(compile_mode=COMPILE)")
    args = parser.parse_args()
    device = torch.device(args.device)

    torch.manual_seed(args.seed)
    clip = render_batch([args.seed], SyntheticConfig(args.frames, args.height, args.width), device)
    points = clip.points[0]
    outlier = torch.rand(points.shape[:-1], device=device) < args.outliers
    low, high = points.reshape(-1, 3).min(0).values, points.reshape(-1, 3).max(0).values
    corrupted = torch.where(outlier[..., None], low + (high - low) * torch.rand_like(points), points)
    everything = torch.ones_like(outlier)

    print(f"camera recovery, {args.frames}x{args.height}x{args.width} clip on {device} "
          f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'})")
    print(f"{'method':<26}{'input':<16}{'median s':>10}{'vs baseline':>13}{'focal err':>11}{'pose err':>10}"
          f"{'depth err':>11}")
    compiled = functools.partial(recover_cameras, compile_mode=args.compile)
    first_call_s = {}
    for label, data, inlier in (("clean", points, everything), (f"{args.outliers:.0%} outliers", corrupted, ~outlier)):
        baseline_s = median_seconds(lambda: linear_cameras(data), device, args.repeats)
        robust_s = median_seconds(lambda: recover_cameras(data), device, args.repeats)
        rows = [("linear (DLT)", linear_cameras, baseline_s), ("recover_cameras", recover_cameras, robust_s)]
        if args.compile:
            first_call_s[label] = median_seconds(lambda: compiled(data), device, 1, warm_up=False)
            rows.append((f"compiled {args.compile}", compiled, median_seconds(lambda: compiled(data), device,
                                                                                 args.repeats)))
        for name, function, seconds in rows:
            focal, pose, depth = _errors(function(data), clip, inlier)
            print(f"{name:<26}{label:<16}{seconds:>10.4f}{seconds / baseline_s:>12.2f}x{focal:>11.1e}{pose:>10.1e}"
                  f"{depth:>11.1e}" + (f"  ({robust_s / seconds:.2f}x eager)" if function is compiled else ""))
    if args.compile:
        print("first compiled call (compiling included): "
              + ", ".join(f"{label} {seconds:.2f} s" for label, seconds in first_call_s.items()))
    if args.profile:
        _profile(lambda: (compiled if args.compile else recover_cameras)(corrupted), device)


def _profile(call, device: torch.device) -> None:
    """Print the top ops of one ``call``, its kernel launches, and its host syncs and copies."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    call()  # warm-up
    with profile(activities=activities) as prof:
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    events = prof.key_averages()
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(events.table(sort_by=sort, row_limit=25))
    counts = {event.key: event.count for event in events}
    launches = sum(count for key, count in counts.items() if key in ("cudaLaunchKernel", "cuLaunchKernel",
                                                                      "cudaLaunchKernelExC", "cuLaunchKernelEx"))
    syncs = {key: count for key, count in counts.items()
             if "Synchronize" in key or key in ("aten::_local_scalar_dense", "cudaMemcpyAsync")}
    print(f"aten ops: {sum(count for key, count in counts.items() if key.startswith('aten::'))}, "
          f"kernel launches: {launches}, syncs and copies: {syncs}")


if __name__ == "__main__":
    main()
