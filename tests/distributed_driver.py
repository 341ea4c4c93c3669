"""One stage-2 (DiT) run under ``torchrun`` (or plain ``python``), recording what each process saw and held.

Usage: ``torchrun --nproc_per_node 2 tests/distributed_driver.py --record DIR -- <sora3r train dit options>``.
Trains on the default synthetic source; writes ``DIR/rank{r}.json`` with, per step, the SHA-256 of each clip of
the batch and of the raw transformer weights at the start of the step, of the EMA weights the run ends with, and
whether the process has left the launcher's process group when training returns.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch
from accelerate import PartialState

from sora3r.cli import parse
from sora3r.train.data import synthetic_source
from sora3r.train.dit import DiTConfig, DiTStage
from sora3r.train.loop import run_stage
from sora3r.types import ClipBatch


def tensor_hash(tensors) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def weights_hash(state_dict: dict[str, torch.Tensor]) -> str:
    """Hash of a state dict's tensors in name order (the order of a safetensors file)."""
    return tensor_hash(state_dict[name] for name in sorted(state_dict))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("train_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    config = parse(["train", "dit", *train_args]).stage

    stages: list[DiTStage] = []
    sources = []

    def build_stage(config: DiTConfig, device: torch.device) -> DiTStage:  # called once the loop's accelerator exists
        state = PartialState()
        sources.append(synthetic_source(config.num_frames, config.height, config.width, device, state.process_index,
                                        state.num_processes))
        stages.append(DiTStage(config, device))
        return stages[0]

    steps = []

    def recording_source(step: int, batch_size: int) -> ClipBatch:
        batch = sources[0](step, batch_size)
        steps.append({"step": step, "clips": [tensor_hash([clip]) for clip in batch.rgb],
                      "weights": weights_hash(stages[0].model.state_dict())})
        return batch

    summary = run_stage(build_stage, config, recording_source)
    state = PartialState()
    args.record.mkdir(parents=True, exist_ok=True)
    record = {"process_index": state.process_index, "num_processes": state.num_processes, "summary": summary,
              "steps": steps, "final_ema_weights": weights_hash(stages[0].model.state_dict()),
              "process_group_left": not torch.distributed.is_initialized()}
    (args.record / f"rank{state.process_index}.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
