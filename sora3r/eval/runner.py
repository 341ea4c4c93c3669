"""Benchmark runner: one method over one dataset under the MonST3R protocol, written out as JSON, markdown and plots.

Per sequence: run the method, score poses against ground-truth poses (evo, Sim(3), RPE all pairs) and
depth against ground-truth depth (one alignment per sequence, the dataset's depth cap). A sequence whose
method or metric raises is kept and marked ``FAILED`` with its error; it is never dropped. Dataset
scores: plain mean over sequences for poses, valid-pixel weighted mean for depth.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import re
import time
from pathlib import Path

from tqdm import tqdm

from sora3r.eval.depth import DEPTH_METRIC_KEYS, aggregate_depth, depth_metrics, depth_on_gt_grid
from sora3r.eval.methods import METHODS, Method
from sora3r.eval.pose import POSE_METRIC_KEYS, aggregate_pose, pose_metrics
from sora3r.fs import atomic_output_dir

DEFAULT_DEPTH_ALIGN = "scale&shift"  # the protocol's choice for methods whose depth is relative


def _json_ready(value):
    """``value`` with NaN/inf floats replaced by ``None`` (strict JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


def _file_stem(name: str) -> str:
    """A sequence name made safe as a file name (``a/b c`` -> ``a__b_c``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("/", "__"))


def build_method(name: str, options: dict | None = None) -> tuple[Method, dict]:
    """The method ``name`` built with the options its factory accepts.

    Returns ``(method, ignored)`` where ``ignored`` holds the options given a value that this method does
    not take (e.g. ``model`` for ``oracle``), so that the caller can report them.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {sorted(METHODS)}")
    factory = METHODS[name]
    accepted = inspect.signature(factory).parameters
    options = options or {}
    used = {key: value for key, value in options.items() if key in accepted and value is not None}
    ignored = {key: value for key, value in options.items() if key not in accepted and value is not None}
    return factory(**used), ignored


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0]


def _evaluate_sequence(seq, method: Method, plot_dir: Path, depth_align: str, pose_align: str,
                       all_pairs: bool) -> tuple[dict, dict | None, dict | None]:
    """Score one sequence. Returns ``(record, pose, depth)``; ``pose``/``depth`` are ``None`` when they failed
    or when the sequence has no such ground truth (then ``record`` has no such keys either)."""
    record = {"name": seq.name, "num_frames": seq.num_frames, "status": "ok", "errors": {}}
    start = time.perf_counter()
    try:
        rec = method(seq)
    except Exception as error:  # any failure of the method is reported, never fatal for the benchmark
        record["status"] = "FAILED"
        record["errors"]["method"] = _error_text(error)
        return record, None, None
    record["time_s"] = time.perf_counter() - start

    pose = depth = None
    if seq.c2w is not None:
        try:
            pose = pose_metrics(rec.c2w, seq.c2w, seq.timestamps, align=pose_align, all_pairs=all_pairs)
            record.update(pose)
        except Exception as error:
            record["status"] = "FAILED"
            record["errors"]["pose"] = _error_text(error)
    if seq.depth is not None:
        try:
            pred = depth_on_gt_grid(rec.depth, seq.depth.shape[-2:], rec.metadata.get("crop_affine"))
            depth = depth_metrics(pred, seq.depth, seq.valid, align=depth_align, max_depth=seq.depth_max)
            record.update(depth)
            record["depth_frame_coverage"] = float(pred.isfinite().double().mean())  # < 1 where cropped
        except Exception as error:
            record["status"] = "FAILED"
            record["errors"]["depth"] = _error_text(error)
    if pose is not None:
        plot_path = plot_dir / f"{_file_stem(seq.name)}.png"
        try:
            from sora3r.viz.plots import plot_pose_alignment

            plot_pose_alignment(plot_path, rec.c2w, seq.c2w, pose_align, title=seq.name)
            record["plot"] = str(plot_path.relative_to(plot_dir.parent))
        except Exception as error:  # a plot is a convenience: report its failure, keep the scores
            record["errors"]["plot"] = _error_text(error)
    return record, pose, depth


def _format(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_format(row.get(column)) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def _results_markdown(summary: dict, records: list[dict]) -> str:
    metric_columns = [key for key in (*POSE_METRIC_KEYS, *DEPTH_METRIC_KEYS)
                      if any(key in record for record in records)]
    summary_columns = ["num_sequences", "num_failed", *metric_columns]
    per_sequence = [
        {**record, "notes": "; ".join([*(f"{stage}: {text}" for stage, text in record["errors"].items()),
                                       *([f"undefined: {record['undefined']}"] if "undefined" in record else [])])}
        for record in records
    ]
    covered = ", ".join(f"{key} {summary[f'{key}_sequences']}" for key in POSE_METRIC_KEYS if key in metric_columns)
    return "\n".join([
        f"# {summary['method']} on {summary['dataset']}",
        "",
        f"MonST3R protocol: poses {summary['pose_align']} aligned (evo, RPE delta 1 frame, all pairs = "
        f"{summary['rpe_all_pairs']}), depth aligned per sequence by {summary['depth_align']!r}; pose scores are "
        "plain means over sequences, depth scores valid-pixel weighted means.",
        "",
        "## Summary",
        "",
        _markdown_table([summary], summary_columns),
        "",
        *([f"Sequences in each pose mean: {covered} (of {summary['pose_sequences']} scored; ATE and RPE-trans are "
           "undefined where the ground-truth camera centres coincide)."] if covered else []),
        "",
        "## Per sequence",
        "",
        _markdown_table(per_sequence, ["name", "status", "num_frames", "time_s", *metric_columns, "notes"]),
        "",
    ])


def run_eval(
    method: str,
    dataset: str,
    root: Path | None,
    out_dir: Path,
    max_sequences: int | None = None,
    method_options: dict | None = None,
    dataset_options: dict | None = None,
    depth_align: str | None = None,
    pose_align: str = "sim3",
    all_pairs: bool = True,
    overwrite: bool = False,
) -> dict:
    """Run ``method`` over ``dataset`` and write ``per_sequence.json``, ``summary.json``, ``results.md`` and
    ``plots/<sequence>.png`` into ``out_dir``.

    Args:
        method: a key of ``sora3r.eval.methods.METHODS``.
        dataset, root, dataset_options: passed to ``sora3r.data.datasets.iter_sequences(dataset, root, **options)``.
        max_sequences: stop after this many sequences.
        method_options: keywords for the method's factory; ones it does not take are listed in the summary.
        depth_align: ``"scale"``, ``"scale&shift"`` (default: the protocol's choice for relative depth) or
            ``"none"``.
        pose_align, all_pairs: see :func:`sora3r.eval.pose.pose_metrics` (defaults = the protocol).
        overwrite: replace a non-empty ``out_dir`` (otherwise that is an error, raised before any work).
        Everything is written into a temporary folder that replaces ``out_dir`` at the end, so a run that raises
        (unknown dataset, missing root, interrupt) leaves no ``out_dir`` behind.

    Returns:
        The summary dict (also ``summary.json``): ``ate``, ``rpe_trans``, ``rpe_rot`` (each with
        ``<key>_sequences``, the number of sequences its mean covers; ``None`` when it covers none), ``abs_rel``,
        ``delta_1.25``, ... plus ``num_sequences``, ``num_failed``, ``failed`` (names), counts, settings, timing.
    """
    from sora3r.data.datasets import iter_sequences

    # Bad method / dataset names and missing dataset folders are reported before the output folder is touched.
    method_fn, ignored_options = build_method(method, method_options)
    sequences = iter_sequences(dataset, root, **(dataset_options or {}))
    depth_align = depth_align or DEFAULT_DEPTH_ALIGN
    model = (method_options or {}).get("model")
    with atomic_output_dir(out_dir, overwrite, inputs=(root, model), what=f"sora3r eval {method} {dataset}") as staging:
        summary = _run_into(staging, method, dataset, sequences, method_fn, ignored_options, max_sequences,
                            method_options, dataset_options, depth_align, pose_align, all_pairs)
    return summary


def _run_into(out_dir: Path, method: str, dataset: str, sequences, method_fn: Method, ignored_options: dict,
              max_sequences: int | None, method_options: dict | None, dataset_options: dict | None,
              depth_align: str, pose_align: str, all_pairs: bool) -> dict:
    """The body of `run_eval`: score ``sequences`` (an iterator of `VideoSequence`) and write into ``out_dir`` (a
    fresh staging folder)."""
    plot_dir = out_dir / "plots"
    plot_dir.mkdir()

    start = time.perf_counter()
    records, poses, depths = [], [], []
    depth_expected = 0
    sequences = itertools.islice(sequences, max_sequences)
    progress = tqdm(sequences, total=max_sequences, desc=f"{method} on {dataset}", unit="seq")
    for seq in progress:
        record, pose, depth = _evaluate_sequence(seq, method_fn, plot_dir, depth_align, pose_align, all_pairs)
        records.append(record)
        if seq.c2w is not None:
            poses.append(pose)
        if seq.depth is not None:
            depth_expected += 1
        if depth is not None:
            depths.append(depth)
        progress.set_postfix_str(f"{seq.name}: {record['status']}")
    total_s = time.perf_counter() - start

    pose_summary = aggregate_pose(poses)
    depth_summary = aggregate_depth(depths)
    method_s = sum(record.get("time_s", 0.0) for record in records)
    frames = sum(record["num_frames"] for record in records if "time_s" in record)
    summary = {
        "method": method,
        "dataset": dataset,
        "num_sequences": len(records),
        "num_failed": sum(record["status"] == "FAILED" for record in records),
        "failed": [record["name"] for record in records if record["status"] == "FAILED"],
        **{key: pose_summary[key] for key in POSE_METRIC_KEYS},
        **{f"{key}_sequences": pose_summary[f"{key}_sequences"] for key in POSE_METRIC_KEYS},
        "pose_sequences": pose_summary["num_sequences"],
        "pose_failed": pose_summary["num_failed"],
        **{key: depth_summary[key] for key in DEPTH_METRIC_KEYS},
        "depth_sequences": depth_summary["num_sequences"],
        "depth_failed": depth_expected - len(depths),
        "depth_valid_pixels": depth_summary["num_valid"],
        "pose_align": pose_align,
        "rpe_all_pairs": all_pairs,
        "depth_align": depth_align,
        "method_options": {key: str(value) for key, value in (method_options or {}).items() if value is not None},
        "ignored_method_options": sorted(ignored_options),
        "dataset_options": {key: str(value) for key, value in (dataset_options or {}).items()},
        "total_time_s": total_s,
        "method_time_s": method_s,
        "method_seconds_per_frame": method_s / frames if frames else None,
    }
    (out_dir / "per_sequence.json").write_text(json.dumps(_json_ready(records), indent=2) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(_json_ready(summary), indent=2) + "\n")
    (out_dir / "results.md").write_text(_results_markdown(summary, records))
    return summary
