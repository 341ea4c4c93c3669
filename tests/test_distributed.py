"""Stage 2 under ``torchrun``: DDP over two CPU processes (gloo) against one process at the same global batch.

Each process trains on its own slice of the step's synthetic clips, so two processes x batch B see exactly the clips
of one process x batch 2B. The noise and timesteps of a step are drawn per process (``step_generator`` depends on
the process index), so the two runs optimise the same data with different noise draws: their loss curves agree
closely, not bit for bit. What must hold exactly is asserted exactly: the clips, the initial weights, and the
weights of the two ranks at every step (DDP averages the gradients, so the ranks never drift apart).
"""

import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from distributed_driver import weights_hash
from sora3r.models.transformer import JointLatentTransformer
from sora3r.models.vae import build_vae

DRIVER = Path(__file__).with_name("distributed_driver.py")
STEPS, RESUMED_STEPS, GLOBAL_BATCH = 8, 12, 4


def driver_command(processes: int, output: Path, record: Path, vaes: Path, steps: int, *options: str) -> list[str]:
    """The driver and its training options (global batch GLOBAL_BATCH over ``processes`` processes in all)."""
    return [str(DRIVER), "--record", str(record), "--", "--output", str(output),
            "--batch-size", str(GLOBAL_BATCH // processes), "--steps", str(steps),
            "--video-vae", str(vaes / "video_vae"), "--pointmap-vae", str(vaes / "pointmap_vae"), "--squash",
            "--num-frames", "9", "--height", "16", "--width", "16", "--lr", "1e-3", "--warmup-steps", "1",
            "--ema-decay", "0.9", "--log-every", "1", "--checkpoint-every", "4", *options]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same per-process threads in every run (torchrun's default)
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def launch(processes: int, output: Path, record: Path, vaes: Path, steps: int, *options: str) -> list[dict]:
    """Run the driver under torchrun on one node; returns the per-rank records in rank order."""
    command = [*TORCHRUN, "--standalone", "--nproc_per_node", str(processes),
               *driver_command(processes, output, record, vaes, steps, *options)]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return [json.loads((record / f"rank{rank}.json").read_text()) for rank in range(processes)]


def launch_two_nodes(output: Path, record: Path, vaes: Path, steps: int, *options: str) -> list[dict]:
    """Simulate two hosts: two torchrun invocations with ``--nnodes 2`` and node ranks 0 and 1, one process each,
    meeting at a rendezvous on 127.0.0.1 (what docs/multi_gpu.md tells users to run on each host)."""
    with socket.socket() as probe:  # a free port for node 0's rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nodes = [subprocess.Popen([*TORCHRUN, "--nnodes", "2", "--node_rank", str(rank), "--nproc_per_node", "1",
                               "--master_addr", "127.0.0.1", "--master_port", str(port),
                               *driver_command(2, output, record, vaes, steps, *options)],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in (0, 1)]
    logs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(log[-3000:] for log in logs)
    return [json.loads((record / f"rank{rank}.json").read_text()) for rank in range(2)]


def loss_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Random tiny VAEs; an 8-step run with one process at batch 4 and one with two processes at batch 2."""
    root = tmp_path_factory.mktemp("distributed")
    torch.manual_seed(0)  # the same VAEs, hence the same latents and loss curves, in every test run
    for name in ("video_vae", "pointmap_vae"):
        build_vae("tiny").save_pretrained(root / name)
    one = launch(1, root / "one", root / "one_record", root, STEPS)
    two = launch(2, root / "two", root / "two_record", root, STEPS)
    return root, one, two


@pytest.mark.slow
def test_two_processes_train_on_the_one_process_batches_with_close_losses(runs):
    root, (one,), two = runs
    assert [r["num_processes"] for r in two] == [2, 2] and [r["process_index"] for r in two] == [0, 1]
    assert one["num_processes"] == 1 and one["summary"]["step"] == two[0]["summary"]["step"] == STEPS
    assert [r["process_group_left"] for r in two] == [True, True]  # no destroy_process_group warning at exit
    for single, first, second in zip(one["steps"], two[0]["steps"], two[1]["steps"], strict=True):
        assert single["step"] == first["step"] == second["step"]
        assert first["clips"] + second["clips"] == single["clips"]  # rank 0 takes the first half of the batch
        assert len(set(single["clips"])) == GLOBAL_BATCH
    assert one["steps"][0]["weights"] == two[0]["steps"][0]["weights"]  # the same initial model

    single, double = [r["loss"] for r in loss_log(root / "one")], [r["loss"] for r in loss_log(root / "two")]
    assert len(single) == len(double) == STEPS
    # Same data, different noise draws: every step within 15 %, the curves' means within 5 %, and both fall.
    for a, b in zip(single, double):
        assert abs(a - b) < 0.15 * a, (single, double)
    assert abs(sum(single) - sum(double)) < 0.05 * sum(single), (single, double)
    for curve in (single, double):
        assert sum(curve[-2:]) < sum(curve[:2])


@pytest.mark.slow
def test_ranks_hold_identical_weights_at_every_step(runs):
    _, _, (rank0, rank1) = runs
    hashes = [step["weights"] for step in rank0["steps"]]
    assert hashes == [step["weights"] for step in rank1["steps"]]
    assert len(set(hashes)) == STEPS  # the weights do change from step to step
    assert rank0["final_ema_weights"] == rank1["final_ema_weights"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["full", "light"])
def test_two_process_checkpoint_resumes_in_one_process(runs, tmp_path, mode):
    root, _, _ = runs
    run = tmp_path / "run"
    shutil.copytree(root / "two", run)
    if mode == "light":
        shutil.rmtree(run / "state")
        saved = JointLatentTransformer.from_pretrained(run / "light" / "model").state_dict()
    else:
        saved = load_file(run / "state" / "model.safetensors")
    (resumed,) = launch(1, run, tmp_path / "record", root, RESUMED_STEPS, "--resume")

    assert resumed["summary"]["resumed_from"] == mode and resumed["summary"]["step"] == RESUMED_STEPS
    assert [s["step"] for s in resumed["steps"]] == list(range(STEPS, RESUMED_STEPS))
    assert resumed["steps"][0]["weights"] == weights_hash(saved)  # continues from the two-process weights
    log = loss_log(run)
    assert [r["step"] for r in log] == list(range(1, RESUMED_STEPS + 1))
    assert log[:STEPS] == loss_log(root / "two")
    assert all(math.isfinite(r["loss"]) for r in log)
    assert max(r["loss"] for r in log[STEPS:]) < 1.5 * log[0]["loss"]


@pytest.mark.slow
def test_one_process_checkpoint_resumes_in_two_processes(runs, tmp_path):
    root, _, _ = runs
    run = tmp_path / "run"
    shutil.copytree(root / "one", run)
    saved = weights_hash(load_file(run / "state" / "model.safetensors"))
    resumed = launch(2, run, tmp_path / "record", root, RESUMED_STEPS, "--resume")

    assert [r["summary"]["resumed_from"] for r in resumed] == ["full", "full"]
    assert [s["step"] for s in resumed[0]["steps"]] == list(range(STEPS, RESUMED_STEPS))
    assert resumed[0]["steps"][0]["weights"] == resumed[1]["steps"][0]["weights"] == saved
    assert resumed[0]["final_ema_weights"] == resumed[1]["final_ema_weights"]
    log = loss_log(run)
    assert [r["step"] for r in log] == list(range(1, RESUMED_STEPS + 1)) and log[:STEPS] == loss_log(root / "one")
    assert max(r["loss"] for r in log[STEPS:]) < 1.5 * log[0]["loss"]


@pytest.mark.slow
def test_two_simulated_nodes_train_checkpoint_and_resume_like_two_local_processes(runs, tmp_path):
    """Two launchers with --nnodes 2 on one host train exactly the run two processes of one launcher train (same
    clips, noise draws and weights at every step), then resume from their own checkpoint as two nodes again."""
    root, _, local = runs
    run = tmp_path / "nodes"
    nodes = launch_two_nodes(run, tmp_path / "record", root, STEPS)
    assert [r["num_processes"] for r in nodes] == [2, 2] and [r["process_index"] for r in nodes] == [0, 1]
    for node, process in zip(nodes, local, strict=True):
        assert node["steps"] == process["steps"]
    assert [(r["step"], r["loss"]) for r in loss_log(run)] == [(r["step"], r["loss"]) for r in loss_log(root / "two")]

    saved = weights_hash(load_file(run / "state" / "model.safetensors"))
    resumed = launch_two_nodes(run, tmp_path / "resumed", root, RESUMED_STEPS, "--resume")
    assert [r["summary"]["resumed_from"] for r in resumed] == ["full", "full"]
    assert [s["step"] for s in resumed[0]["steps"]] == list(range(STEPS, RESUMED_STEPS))
    assert resumed[0]["steps"][0]["weights"] == saved
    assert resumed[0]["final_ema_weights"] == resumed[1]["final_ema_weights"]
    assert [r["step"] for r in loss_log(run)] == list(range(1, RESUMED_STEPS + 1))
