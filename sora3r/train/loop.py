"""The training loop shared by every stage: accelerate, AdamW + warm-up, EMA, logs, resumable checkpoints.

Layout of a run folder ``output/``:
  ``state/``       full ``accelerator.save_state`` (model, optimizer, LR schedule, EMA, RNG) + ``progress.json``
  ``light/``       ``model/`` and ``ema/`` weights (safetensors shards < 16 MB) + ``progress.json``: small
                   enough to carry between machines; resuming from it starts a fresh optimizer with a
                   short warm-up
  ``model/``       the EMA weights at the end of the run or chunk (``save_pretrained``), what later
                   stages and the export read
  ``loss.jsonl``   one line per logged step; ``config.json`` the stage config
Every checkpoint folder is written to a temp folder and renamed into place, so a run killed at any
moment resumes from the last complete checkpoint. The batch and the noise of step ``s`` depend only on
``(seed, s, process)``, so the steps after that checkpoint are replayed exactly.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Protocol

import torch
import tyro
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from annotated_types import Ge, Gt, Interval, MinLen, MultipleOf
from diffusers.models.modeling_utils import ModelMixin
from diffusers.training_utils import EMAModel
from tqdm.auto import tqdm

from sora3r.fs import atomic_output_path, check_output_dir, mark_output_dir
from sora3r.models.vae import VAE_PRESETS, check_num_frames
from sora3r.options import Count, NonNegative, Seed, check_fields, check_model_folder, invalid
from sora3r.train.data import (
    RANK_STRIDE, DataSource, SyntheticPreset, dataset_source, parse_dataset_spec, synthetic_source,
)
from sora3r.types import ClipBatch

CHECKPOINT_MODES = ("full", "light", "both")
MAX_SHARD = "15MB"
TRAINING_RECORD = "training.json"  # the stage config, saved beside the final weights
STEP_STRIDE = 1_000_003  # a prime above the steps of any run: (seed, step) pairs map to distinct integers


MixedPrecision = Literal["auto", "no", "bf16", "fp16"]
VAEPreset = Literal[tuple(VAE_PRESETS)]  # the VAE sizes of sora3r.models.vae
SIZE_MULTIPLE = 16  # clip sides: 8x VAE downsampling, then the transformer's 2x2 patches


RunFolder = Annotated[str, MinLen(1), tyro.conf.arg(aliases=("-o",))]  # a run folder: --output / -o


@dataclass
class TrainConfig:
    """Settings every stage shares (stage configs extend it). Values are checked when the config is made
    (`sora3r.options`); the folders and datasets it reads are checked by :meth:`check_inputs` before a run starts."""

    output: RunFolder = "runs/stage"  # run folder (state/, light/, model/, loss.jsonl, config.json)
    steps: Count = 1000  # total optimisation steps of the run (a resumed run continues up to it)
    batch_size: Count = 4  # clips per step and process (stage 2 with a replay pool: fresh clips per step)
    lr: Annotated[float, Ge(0)] = 2e-4  # AdamW learning rate after warm-up (0: the weights stay as they start)
    weight_decay: Annotated[float, Ge(0)] = 0.01  # AdamW weight decay
    warmup_steps: NonNegative = 100  # linear learning-rate warm-up of a fresh run
    decay_steps: NonNegative = 0  # linear learning-rate decay to 0 over the last decay_steps before `steps` (0: none)
    light_warmup_steps: NonNegative = 20  # warm-up after resuming from a light checkpoint (fresh optimizer)
    grad_clip: Annotated[float, Ge(0)] = 1.0  # gradient-norm clip (0: off)
    ema_decay: Annotated[float, Interval(ge=0, lt=1)] = 0.999  # decay of the weights' moving average (model/)
    checkpoint_every: Count = 250  # steps between checkpoints
    checkpoint_mode: Literal[CHECKPOINT_MODES] = "both"  # full (exact resume) | light (weights + EMA, small) | both
    light_ema_only: bool = False  # light checkpoints keep only the EMA weights (half the bytes to move)
    log_every: Count = 10  # steps between loss.jsonl lines (and --max-minutes checks)
    max_minutes: Annotated[float, Ge(0)] | None = None  # stop cleanly with a checkpoint after this many minutes
    resume: bool = False  # continue from state/ (exact) or else light/ when the run folder has one
    overwrite: bool = False  # start a new run in a run folder that holds an earlier one (without it, or --resume: refused)
    seed: Seed = 0  # seed of the initial weights, the noise and the data order
    gradient_checkpointing: bool = False  # trade compute for activation memory
    mixed_precision: MixedPrecision = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | no | bf16 | fp16
    data_workers: NonNegative = 0  # processes drawing synthetic scenes ahead of the device (0: in the training process)
    datasets: str | None = None  # train on real sets instead of synthetic scenes: NAME=ROOT[:WEIGHT],... (docs/training_data.md)
    synthetic: SyntheticPreset = "default"  # synthetic scene preset: default | realistic | mixed (alternate steps; docs/training.md)
    preset: str = "tiny"  # model size of a fresh run (each stage lists its presets)
    num_frames: Count = 17  # clip length, 8k+1 frames (9, 17, 25, ...)
    height: Annotated[int, Gt(0), MultipleOf(SIZE_MULTIPLE)] = 64  # clip height in pixels (multiple of 16)
    width: Annotated[int, Gt(0), MultipleOf(SIZE_MULTIPLE)] = 64  # clip width in pixels (multiple of 16)

    def __post_init__(self):
        check_fields(self)
        try:
            check_num_frames(self.num_frames)
        except ValueError as err:
            raise invalid("num_frames", self.num_frames, str(err)) from None
        if self.datasets is not None:
            parse_dataset_spec(self.datasets)

    input_folders: ClassVar[tuple[str, ...]] = ()  # the fields naming model folders the stage reads

    def check_inputs(self) -> None:
        """Raise ``FileNotFoundError`` naming the option whose input folder is missing, and ``FileExistsError`` if the
        run folder may not be written: it is written into in place (checkpoints, logs), so it must be new, empty or
        an earlier sora3r run (continued with ``resume``, replaced with ``overwrite``), and never the working directory, an
        ancestor of it or an input folder."""
        for name, (root, _) in (parse_dataset_spec(self.datasets) if self.datasets else {}).items():
            if not Path(root).is_dir():
                raise FileNotFoundError(f"--datasets {name}={root}: no such folder")
        folders = [getattr(self, name) for name in self.input_folders]
        for name, folder in zip(self.input_folders, folders):
            if folder is not None:
                check_model_folder(name, folder)
        output = Path(self.output)
        check_output_dir(output, overwrite=True, inputs=folders)  # refuses folders sora3r did not write
        if not (self.resume or self.overwrite) and output.is_dir() and any(output.iterdir()):
            raise FileExistsError(f"{output}: holds an earlier run; pass --resume to continue it, or --overwrite to "
                                  "start a new one in its place")


class Stage(Protocol):
    """What the loop needs from a stage."""

    model: ModelMixin  # the weights that are trained and saved
    trainable: torch.nn.Module  # what the optimizer sees and accelerate wraps (``model`` or a module around it)

    def loss(self, trainable: torch.nn.Module, batch: ClipBatch, generator: torch.Generator) -> torch.Tensor:
        """Scalar loss of one batch; all randomness from ``generator``."""

    def finalize(self, data_source: DataSource, batch_size: int) -> None:
        """Last touches on ``model`` (holding the EMA weights) before the final save."""

    # Optional: ``resume(data_source, step, batch_size)`` rebuilds state that checkpoints do not hold (the
    # DiT stage's latent replay pool) before training continues at ``step``.


def resolve_mixed_precision(setting: str) -> str:
    """``auto`` -> ``bf16`` on CUDA, ``no`` (fp32) elsewhere."""
    if setting == "auto":
        return "bf16" if torch.cuda.is_available() else "no"
    return setting


def make_accelerator(config: TrainConfig) -> Accelerator:
    """The run's accelerator; joins the process group of ``torchrun`` / ``accelerate launch`` on GPUs or CPUs.

    Without CUDA, accelerate joins that group (gloo) only when told to run on the CPU; otherwise each process would
    train alone and all would write the same run folder.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    accelerator = Accelerator(mixed_precision=resolve_mixed_precision(config.mixed_precision),
                              cpu=launched > 1 and not torch.cuda.is_available())
    if accelerator.num_processes != launched:
        raise RuntimeError(f"launched {launched} processes but accelerate runs {accelerator.num_processes}")
    if accelerator.distributed_type == DistributedType.FSDP:
        raise ValueError("FSDP is not supported: the EMA and the weight saves need whole parameters on every "
                         "process; launch with DDP (accelerate launch --multi_gpu), see docs/multi_gpu.md")
    return accelerator


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished ``tmp`` folder to ``final``; the old one survives as ``final.old`` until then."""
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)


def _recover_dir(final: Path) -> None:
    """After a kill between the two renames of :func:`_replace_dir`, put the old folder back."""
    old = final.with_name(final.name + ".old")
    if not final.exists() and old.exists():
        old.rename(final)


def _write_json(path: Path, data: dict) -> None:
    with atomic_output_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def _save_weights(model: ModelMixin, path: Path) -> None:
    model.save_pretrained(path, max_shard_size=MAX_SHARD, safe_serialization=True)


class _EMAWeights:
    """Swap the EMA weights into ``model`` for the duration of a ``with`` block."""

    def __init__(self, ema: EMAModel, model: ModelMixin):
        self.ema, self.params = ema, list(model.parameters())

    def __enter__(self):
        self.ema.store(self.params)
        self.ema.copy_to(self.params)

    def __exit__(self, *exc):
        self.ema.restore(self.params)


class LossLog:
    """Append-only JSONL loss log; on resume, lines past the resumed step are dropped."""

    def __init__(self, path: Path, resume_step: int, enabled: bool):
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        kept = []
        if path.exists():
            kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= resume_step]
        with atomic_output_path(path) as tmp:
            tmp.write_text("".join(line + "\n" for line in kept))
        self.file = path.open("a")

    def write(self, record: dict) -> None:
        if self.enabled:
            self.file.write(json.dumps(record) + "\n")
            self.file.flush()

    def close(self) -> None:
        if self.enabled:
            self.file.close()


def _lr_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, decay_steps: int, start_step: int,
                 total_steps: int, num_processes: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Warmup-stable-decay learning rate, as a factor of the configured one at each optimisation step: linear warm-up
    over ``warmup_steps`` steps from ``start_step``, constant, then linear decay to 0 over the last ``decay_steps``
    steps before ``total_steps`` (Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training
    Durations": a short final decay recovers the gain of a full cosine schedule while the run stays resumable).

    accelerate steps a prepared scheduler once per process for every optimisation step (without ``split_batches``),
    so ``s // num_processes`` optimisation steps have run after ``s`` scheduler steps. ``start_step`` is where the
    scheduler's count starts (a light resume; 0 for a fresh run or a full resume, whose scheduler state is restored).
    """

    def factor(s: int) -> float:
        done = s // num_processes
        warm = min(1.0, (done + 1) / max(1, warmup_steps))
        if decay_steps == 0:
            return warm
        return warm * min(1.0, max(0.0, (total_steps - start_step - done) / decay_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def run_stage(build_stage, config: TrainConfig, data_source: DataSource | None = None) -> dict:
    """Make the accelerator, the stage (``build_stage(config, device)``) and the data source, then :func:`train`.

    The default data source renders synthetic scenes on the training device.
    """
    config.check_inputs()
    accelerator = make_accelerator(config)
    set_seed(config.seed)  # the same initial weights on every process and in every run of a config
    stage = build_stage(config, accelerator.device)
    if data_source is None and config.datasets:
        data_source = dataset_source(config.datasets, config.num_frames, config.height, config.width,
                                     accelerator.device, config.seed, accelerator.process_index,
                                     accelerator.num_processes, config.data_workers)
    elif data_source is None:
        data_source = synthetic_source(config.num_frames, config.height, config.width, accelerator.device,
                                       accelerator.process_index, accelerator.num_processes, config.data_workers,
                                       config.synthetic)
    summary = train(stage, config, data_source, accelerator)
    accelerator.end_training()  # leaves the launcher's process group (a no-op in a single process)
    return summary


def step_generator(seed: int, step: int, process_index: int, device: torch.device) -> torch.Generator:
    """The generator for all randomness of one step on one process (independent of resumes)."""
    mixed = (seed * STEP_STRIDE + step) * RANK_STRIDE + process_index
    return torch.Generator(device=device).manual_seed(mixed % 2**63)  # a generator takes seeds below 2**63


@dataclass
class _RunFolder:
    """The paths of a run folder (see the module docstring)."""

    output: Path

    @property
    def state(self) -> Path:
        return self.output / "state"

    @property
    def light(self) -> Path:
        return self.output / "light"

    @property
    def final(self) -> Path:
        return self.output / "model"

    def resume_mode(self, resume: bool) -> str | None:
        """``"full"`` / ``"light"``: the checkpoint a resumed run continues from; ``None``: a fresh start."""
        if resume and (self.state / "progress.json").exists():
            return "full"
        if resume and (self.light / "progress.json").exists():
            return "light"
        return None


@dataclass
class _Training:
    """What the steps of a run change: the prepared model, optimizer, LR schedule and EMA."""

    model: ModelMixin
    trainable: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    ema: EMAModel
    start_step: int


def _light_start(model: ModelMixin, folder: _RunFolder, config: TrainConfig) -> tuple[EMAModel, int]:
    """Load a light checkpoint into ``model``: its EMA (restored at its step) and the step to continue from."""
    progress = json.loads((folder.light / "progress.json").read_text())
    ema_source = type(model).from_pretrained(folder.light / "ema")
    # An EMA-only light checkpoint restarts the raw weights from the EMA weights.
    raw = folder.light / "model"
    model.load_state_dict((type(model).from_pretrained(raw) if raw.exists() else ema_source).state_dict())
    ema = EMAModel(ema_source.parameters(), decay=config.ema_decay)
    ema.optimization_step = progress["ema_optimization_step"]
    return ema, progress["step"]


def _prepare(stage: Stage, config: TrainConfig, folder: _RunFolder, resume_from: str | None,
             accelerator: Accelerator) -> _Training:
    """Model in train mode, EMA, AdamW + warm-up prepared by accelerate, and the state a resumed run continues from."""
    model = stage.model
    if config.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    start_step, warmup = 0, config.warmup_steps
    if resume_from == "light":
        ema, start_step = _light_start(model, folder, config)
        warmup = config.light_warmup_steps
    model.to(accelerator.device)
    if resume_from != "light":
        ema = EMAModel(model.parameters(), decay=config.ema_decay)
    ema.to(accelerator.device)

    optimizer = torch.optim.AdamW(
        [p for p in stage.trainable.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = _lr_schedule(optimizer, warmup, config.decay_steps, start_step, config.steps,
                             accelerator.num_processes)
    trainable, optimizer, scheduler = accelerator.prepare(stage.trainable, optimizer, scheduler)
    accelerator.register_for_checkpointing(ema)
    if resume_from == "full":
        accelerator.load_state(str(folder.state))
        start_step = json.loads((folder.state / "progress.json").read_text())["step"]
    return _Training(model, trainable, optimizer, scheduler, ema, start_step)


def _save_checkpoints(run: _Training, step: int, config: TrainConfig, folder: _RunFolder,
                      accelerator: Accelerator) -> None:
    """Write the checkpoints of ``config.checkpoint_mode`` at ``step`` (each to a temp folder, then renamed)."""
    main = accelerator.is_main_process
    progress = {"step": step, "ema_optimization_step": run.ema.optimization_step}
    if config.checkpoint_mode in ("full", "both"):
        tmp = folder.output / "state.tmp"
        if main and tmp.exists():
            shutil.rmtree(tmp)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(tmp))
        accelerator.wait_for_everyone()  # every process has written its RNG state before the rename
        if main:
            _write_json(tmp / "progress.json", progress)
            _replace_dir(tmp, folder.state)
    if main and config.checkpoint_mode in ("light", "both"):
        tmp = folder.output / "light.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        if not config.light_ema_only:
            _save_weights(run.model, tmp / "model")
        with _EMAWeights(run.ema, run.model):
            _save_weights(run.model, tmp / "ema")
        _write_json(tmp / "progress.json", progress)
        _replace_dir(tmp, folder.light)
    accelerator.wait_for_everyone()


def _optimisation_step(stage: Stage, run: _Training, batch, generator: torch.Generator, config: TrainConfig,
                       accelerator: Accelerator) -> torch.Tensor:
    """One step: loss, backward, clipped AdamW update, LR schedule, EMA; returns the (detached) loss."""
    loss = stage.loss(run.trainable, batch, generator)
    accelerator.backward(loss)
    if config.grad_clip > 0:
        accelerator.clip_grad_norm_(run.trainable.parameters(), config.grad_clip)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.ema.step(run.model.parameters())
    return loss.detach()


def _out_of_time(config: TrainConfig, started: float, accelerator: Accelerator) -> bool:
    """Whether any process has run past ``config.max_minutes`` (all processes agree, so all stop together)."""
    if config.max_minutes is None:
        return False
    over = torch.tensor(float(time.monotonic() - started > 60 * config.max_minutes), device=accelerator.device)
    return float(accelerator.reduce(over, "max")) > 0


def _run_steps(stage: Stage, run: _Training, config: TrainConfig, data_source: DataSource, folder: _RunFolder,
               accelerator: Accelerator, started: float) -> tuple[int, bool, float]:
    """Train from ``run.start_step`` to ``config.steps`` (or the time limit), logging and checkpointing on the way.

    Returns ``(last step, stopped early, last logged loss)``.
    """
    main = accelerator.is_main_process
    log = LossLog(folder.output / "loss.jsonl", run.start_step, main)
    bar = tqdm(total=config.steps, initial=run.start_step, disable=not main, desc=type(stage).__name__)
    step, stopped_early, last_loss = run.start_step, False, math.nan
    running = torch.zeros((), device=accelerator.device)
    while step < config.steps:
        batch = data_source(step, config.batch_size)
        generator = step_generator(config.seed, step, accelerator.process_index, accelerator.device)
        running += _optimisation_step(stage, run, batch, generator, config, accelerator)
        step += 1
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:
            count = config.log_every if step % config.log_every == 0 else step % config.log_every
            last_loss = float(accelerator.reduce(running, "mean")) / count
            running.zero_()
            log.write({"step": step, "loss": last_loss, "lr": run.scheduler.get_last_lr()[0],
                       "seconds": round(time.monotonic() - started, 2)})
            bar.set_postfix(loss=f"{last_loss:.4f}")
            if _out_of_time(config, started, accelerator) and step < config.steps:
                stopped_early = True
                break
        if step % config.checkpoint_every == 0 and step < config.steps:
            _save_checkpoints(run, step, config, folder, accelerator)
    bar.close()
    log.close()
    return step, stopped_early, last_loss


def _peak_memory_gib(accelerator: Accelerator) -> float | None:
    """The largest ``torch.cuda.max_memory_allocated`` of any process so far, in GiB (``None`` off CUDA)."""
    if accelerator.device.type != "cuda":
        return None
    peak = torch.tensor(torch.cuda.max_memory_allocated(accelerator.device) / 2**30, device=accelerator.device)
    return round(float(accelerator.reduce(peak, "max")), 2)


def train(stage: Stage, config: TrainConfig, data_source: DataSource, accelerator: Accelerator) -> dict:
    """Run (or resume) a stage until ``config.steps`` or ``config.max_minutes``; returns a summary dict.

    Checkpoints are written every ``checkpoint_every`` steps and at the end; ``stage.model`` then takes
    the EMA weights, ``stage.finalize`` runs and the result is saved to ``output/model/``. The summary's
    ``peak_memory_gib`` is the training steps' peak of ``torch.cuda.max_memory_allocated`` over all processes (before
    the final checkpoint and ``finalize``; ``None`` off CUDA).
    """
    started = time.monotonic()
    folder = _RunFolder(Path(config.output))
    main = accelerator.is_main_process
    if main:
        folder.output.mkdir(parents=True, exist_ok=True)
        mark_output_dir(folder.output, f"sora3r training run ({type(stage).__name__})")
        for checkpoint in (folder.state, folder.light):
            _recover_dir(checkpoint)
        _write_json(folder.output / "config.json", asdict(config))
    accelerator.wait_for_everyone()

    resume_from = folder.resume_mode(config.resume)
    run = _prepare(stage, config, folder, resume_from, accelerator)
    if run.start_step > 0 and hasattr(stage, "resume"):
        stage.resume(data_source, run.start_step, config.batch_size)
    step, stopped_early, last_loss = _run_steps(stage, run, config, data_source, folder, accelerator, started)
    peak_memory = _peak_memory_gib(accelerator)
    _save_checkpoints(run, step, config, folder, accelerator)
    run.ema.copy_to(run.model.parameters())
    run.model.eval()
    stage.finalize(data_source, config.batch_size)
    if main:
        tmp = folder.output / "model.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        _save_weights(run.model, tmp)
        _write_json(tmp / TRAINING_RECORD, {**asdict(config), "step": step})
        _replace_dir(tmp, folder.final)
    accelerator.wait_for_everyone()
    return {"step": step, "loss": last_loss, "finished": not stopped_early, "resumed_from": resume_from,
            "seconds": time.monotonic() - started, "peak_memory_gib": peak_memory}
