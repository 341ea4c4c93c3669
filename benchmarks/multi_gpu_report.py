"""The figures of benchmarks/bench_multi_gpu.sh from its run folders: results.json, results.md (printed too).

    python benchmarks/multi_gpu_report.py WORK OUT --global-batch B

Reads ``WORK/runs.jsonl`` (one line per run: name, GPUs, CUDA devices, exit status, start and end as Unix seconds),
each run folder's ``loss.jsonl`` / ``config.json``, the run's summary (the JSON line ``sora3r train`` prints) and
``OUT/smi.csv`` (nvidia-smi samples) when there is one. Step times come from the ``seconds`` of ``loss.jsonl``
(time since the run's training loop started); the first logged interval (start-up, first-step compilation and
autotuning) is left out. Clips per step = ``--batch-size`` x processes (the runs here use no replay pool).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
from pathlib import Path

import torch

WARMUP_STEPS = 2  # paper-size runs: the first two steps (allocation, cuDNN autotuning) are left out of step times


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def run_summary(work: Path, name: str) -> dict | None:
    """The summary dict ``sora3r train`` printed (the last JSON line with a ``step``), if the run finished."""
    path = work / f"{name}.summary"
    for line in reversed(path.read_text().splitlines() if path.exists() else []):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "step" in record:
            return record
    return None


def step_seconds(log: list[dict]) -> float | None:
    """Seconds a step: median over the logged intervals after the first one (and after WARMUP_STEPS steps); in a
    resumed run, over the resumed part only (its ``seconds`` start again from 0)."""
    restart = max((i for i in range(1, len(log)) if log[i]["seconds"] < log[i - 1]["seconds"]), default=0)
    log = log[restart:]
    intervals = [(b["seconds"] - a["seconds"]) / (b["step"] - a["step"])
                 for a, b in zip(log, log[1:]) if a["step"] >= WARMUP_STEPS]
    return statistics.median(intervals) if intervals else None


def smi_peaks(smi: Path, start: float, end: float, devices: str) -> dict[str, float] | None:
    """Largest nvidia-smi ``memory.used`` (GiB) of each of ``devices`` between ``start`` and ``end``."""
    if not smi.exists():
        return None
    peaks: dict[str, float] = {}
    for line in smi.read_text().splitlines():
        fields = [f.strip() for f in line.split(",")]
        try:
            stamp = datetime.datetime.strptime(fields[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            index, used = fields[1], float(fields[2]) / 1024
        except (ValueError, IndexError):
            continue
        if start <= stamp <= end and index in devices.split(","):
            peaks[index] = round(max(peaks.get(index, 0.0), used), 1)
    return peaks or None


def run_figures(work: Path, out: Path, run: dict) -> dict:
    """What one run measured: steps, losses, step time, clips/s (all and per GPU), peak memory."""
    folder = work / run["name"]
    figures = {key: run.get(key) for key in ("name", "gpus", "rc", "skipped")}
    summary = run_summary(work, run["name"])
    log = read_jsonl(folder / "loss.jsonl")
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else {}
    figures.update(summary=summary, curve=[(r["step"], round(r["loss"], 5)) for r in log],
                   batch_per_gpu=config.get("batch_size"), clip=[config.get(k) for k in ("num_frames", "height", "width")])
    seconds = step_seconds(log)
    if seconds and config:
        clips = config["batch_size"] * run["gpus"]
        figures.update(step_seconds=round(seconds, 4), steps_per_second=round(1 / seconds, 3),
                       clips_per_second=round(clips / seconds, 2), clips_per_second_per_gpu=round(clips / seconds / run["gpus"], 2))
    if "start" in run:
        figures["smi_peak_gib"] = smi_peaks(out / "smi.csv", run["start"], run["end"], run["devices"])
    figures["peak_memory_gib"] = summary.get("peak_memory_gib") if summary else None
    return figures


def compare_curves(one: list, two: list) -> dict:
    """Relative differences of two loss curves at their common logged steps."""
    two_at = dict(two)
    pairs = [(loss, two_at[step]) for step, loss in one if step in two_at]
    if not pairs:
        return {}
    differences = [abs(a - b) / abs(a) for a, b in pairs]
    return {"points": len(pairs), "max_relative_difference": round(max(differences), 4),
            "mean_relative_difference": round(statistics.mean(differences), 4),
            "mean_loss": [round(statistics.mean(a for a, _ in pairs), 5), round(statistics.mean(b for _, b in pairs), 5)]}


def scaling(one: dict, two: dict) -> dict:
    """Clips/s per GPU of the 2-GPU run against the 1-GPU run (1.0 = perfect scaling)."""
    if not one.get("clips_per_second_per_gpu") or not two.get("clips_per_second_per_gpu"):
        return {}
    return {"speedup": round(two["clips_per_second"] / one["clips_per_second"], 3),
            "efficiency": round(two["clips_per_second_per_gpu"] / one["clips_per_second_per_gpu"], 3)}


def resume_check(resumed: dict, source: dict) -> dict:
    """Whether a resumed run continued ``source``'s checkpoint: its summary, its logged steps, the loss across."""
    summary, curve = resumed.get("summary") or {}, resumed["curve"]
    before = [loss for step, loss in curve if step <= (source.get("summary") or {}).get("step", 0)]
    after = [loss for step, loss in curve if step > (source.get("summary") or {}).get("step", 0)]
    steps = [step for step, _ in curve]
    return {"resumed_from": summary.get("resumed_from"), "final_step": summary.get("step"),
            "logged_steps_increase_to_final": bool(steps) and steps == sorted(set(steps)) and steps[-1] == summary.get("step"),
            "log_before_resume_kept": before == [loss for _, loss in source["curve"]],
            "loss_last_before": before[-1] if before else None, "loss_first_after": after[0] if after else None,
            "loss_after": after}


def markdown(results: dict) -> str:
    """The tables of results.md."""
    lines = [f"# Many-GPU benchmark ({results['device']}, {results['date']})", "",
             f"torch {results['torch']}, python {results['python']}", "",
             "| run | GPUs | batch/GPU | clip | exit | steps | step s | clips/s | clips/s/GPU | peak GiB (torch) | nvidia-smi GiB |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in results["runs"].values():
        if run.get("skipped"):
            lines.append(f"| {run['name']} | {run['gpus']} | | | skipped: {run['skipped']} | | | | | | |")
            continue
        clip = "x".join(str(v) for v in run["clip"])
        steps = (run["summary"] or {}).get("step")
        lines.append(f"| {run['name']} | {run['gpus']} | {run['batch_per_gpu']} | {clip} | {run['rc']} | {steps} | "
                     f"{run.get('step_seconds')} | {run.get('clips_per_second')} | {run.get('clips_per_second_per_gpu')} | "
                     f"{run['peak_memory_gib']} | {run.get('smi_peak_gib')} |")
    lines += ["", "## a. Same global batch on 1 and 2 GPUs", "", f"scaling: {results['a_scaling']}",
              f"loss curves: {results['a_curves']}", "", "| step | loss 1 GPU | loss 2 GPUs |", "|---|---|---|"]
    two_at = dict(results["runs"].get("a_two", {}).get("curve", []))
    lines += [f"| {step} | {loss} | {two_at.get(step)} |" for step, loss in results["runs"].get("a_one", {}).get("curve", [])]
    lines += ["", "## b. Resuming on the other GPU count", ""]
    lines += [f"- {name}: {json.dumps(check)}" for name, check in results["b_resume"].items()]
    lines += ["", "## c. Paper size: 2 GPUs against 1", ""]
    lines += [f"- {stage}: {json.dumps(value)}" for stage, value in results["c_scaling"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--global-batch", type=int, required=True, help="part a's clips a step, all GPUs together")
    args = parser.parse_args()
    entries = read_jsonl(args.work / "runs.jsonl")
    runs = {entry["name"]: run_figures(args.work, args.out, entry) for entry in entries if "gpus" in entry}
    empty = {"curve": []}
    gpus = args.work / "gpus.txt"
    results = {
        "date": datetime.date.today().isoformat(),
        "device": gpus.read_text().strip().replace("\n", "; ") if gpus.exists() else "CPU (dry run)",
        "torch": torch.__version__, "python": platform.python_version(), "global_batch_a": args.global_batch,
        "setup": [entry for entry in entries if "gpus" not in entry],
        "runs": runs,
        "a_scaling": scaling(runs.get("a_one", {}), runs.get("a_two", {})),
        "a_curves": compare_curves(runs.get("a_one", empty)["curve"], runs.get("a_two", empty)["curve"]),
        "b_resume": {name: resume_check(runs[name], runs.get(source, empty))
                     for name, source in (("b_two_to_one", "a_two"), ("b_one_to_two", "a_one")) if name in runs},
        "c_scaling": {stage: scaling(runs.get(f"c_{stage}_one", {}), runs.get(f"c_{stage}_two", {}))
                      for stage in ("stage1", "stage2")},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    text = markdown(results)
    (args.out / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
