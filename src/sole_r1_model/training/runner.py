"""What SFT and GRPO runs share: trainer arguments from a recipe, resuming, and the run's summary."""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

from transformers import TrainerCallback

from sole_r1_model.training import report
from sole_r1_model.training import model as model_lib
from sole_r1_model.training.data import load_splits
from sole_r1_model.training.model import use_bf16
from sole_r1_model.training.recipe import Recipe

log = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"


@dataclasses.dataclass
class TrainResult:
    """What a finished run reports."""

    final_dir: Path          # the exported checkpoint (rewarder-ready)
    global_step: int         # optimiser steps done in total (including those before a resume)
    start_step: int          # global step the run started from (0, or the resumed checkpoint's step)
    train_loss: float        # mean training loss of this run
    log_history: list        # the trainer's logged records (loss, learning rate, rewards, ...)


@dataclasses.dataclass
class RunInputs:
    """What SFT and GRPO load before building their trainer."""

    output_dir: Path
    base_dir: Path           # the starting checkpoint (a folder; `scratch` models are written there first)
    processor: Any
    train_dataset: Any
    eval_dataset: Any        # None when the recipe holds nothing out


def prepare(recipe: Recipe) -> RunInputs:
    """Create the output folder, resolve the starting checkpoint, load its processor and the data splits."""
    output_dir = Path(recipe.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    train_dataset, eval_dataset = load_splits(recipe.data, recipe.schedule.seed)
    # A model trained from scratch gets a tokenizer that knows the training texts' words (far fewer tokens).
    corpus = list(model_lib.dataset_texts(train_dataset)) if recipe.model.path == model_lib.SCRATCH else []
    base_dir = model_lib.resolve_base(recipe.model, output_dir, corpus)
    processor = model_lib.load_training_processor(recipe.model, base_dir)
    return RunInputs(output_dir, base_dir, processor, train_dataset, eval_dataset)


def checkpoint_arguments(config_class: type, enabled: bool) -> dict[str, Any]:
    """Activation (gradient) checkpointing under whichever name this transformers version uses."""
    # transformers 5.2x renamed gradient_checkpointing to activation_checkpointing (the old name warns); the GPU
    # image has an older 5.x that only knows the old name.
    names = {f.name for f in dataclasses.fields(config_class)}
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    arguments = {key: enabled}
    if enabled:
        arguments[f"{key}_kwargs"] = {"use_reentrant": False}
    return arguments


def common_arguments(config_class: type, recipe: Recipe, with_eval: bool) -> dict[str, Any]:
    """Keyword arguments of SFTConfig / GRPOConfig that come from the recipe's optim and schedule sections."""
    import torch

    optim, schedule = recipe.optim, recipe.schedule
    output_dir = Path(recipe.output_dir)
    if "tensorboard" in schedule.report_to:  # read by transformers' TensorBoardCallback
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(output_dir / TENSORBOARD_DIR))
    return {
        "output_dir": str(output_dir),
        "seed": schedule.seed,
        "data_seed": schedule.seed,
        "per_device_train_batch_size": optim.per_device_batch_size,
        "per_device_eval_batch_size": optim.per_device_batch_size,
        "gradient_accumulation_steps": optim.gradient_accumulation_steps,
        "learning_rate": optim.learning_rate,
        "weight_decay": optim.weight_decay,
        "lr_scheduler_type": optim.lr_scheduler,
        "warmup_steps": optim.warmup,
        "max_grad_norm": optim.max_grad_norm,
        "optim": optim.optimizer,
        "max_steps": schedule.max_steps,
        "num_train_epochs": schedule.num_epochs,
        "save_strategy": "steps",
        "save_steps": schedule.save_steps,
        "save_total_limit": schedule.save_total_limit,
        "logging_steps": schedule.logging_steps,
        "logging_first_step": True,
        "eval_strategy": "steps" if with_eval else "no",
        "eval_steps": schedule.eval_steps or schedule.save_steps,
        "bf16": use_bf16(schedule.precision),
        "use_cpu": not torch.cuda.is_available(),
        "report_to": list(schedule.report_to) or "none",
        "disable_tqdm": not schedule.progress_bar,
        "dataloader_num_workers": schedule.dataloader_workers,
        **checkpoint_arguments(config_class, schedule.gradient_checkpointing),
    }


def resume_checkpoint(output_dir: Path, resume: Optional[str]) -> Optional[str]:
    """The checkpoint to resume from: None (fresh run), the latest checkpoint-N of output_dir ('latest'), or a path."""
    if resume is None:
        return None
    if resume != "latest":
        if not Path(resume).is_dir():
            raise FileNotFoundError(f"--resume {resume}: no such checkpoint folder")
        return str(resume)
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(output_dir)) if Path(output_dir).is_dir() else None
    if last is None:
        raise FileNotFoundError(f"--resume: no checkpoint-N folder in {output_dir}; start without --resume")
    return last


class StartStepCallback(TrainerCallback):
    """Records the global step training starts from (after a resume has loaded its checkpoint) and when."""

    def __init__(self) -> None:
        self.step = 0
        self.began = time.monotonic()

    def on_train_begin(self, args, state, control, **kwargs):
        self.step = state.global_step
        self.began = time.monotonic()


def train(trainer, recipe: Recipe, resume: Optional[str]):
    """Run `trainer` (resuming if asked) and return (train output, start step, seconds)."""
    callback = StartStepCallback()
    trainer.add_callback(callback)
    checkpoint = resume_checkpoint(Path(recipe.output_dir), resume)
    if checkpoint:
        log.info("resuming from %s", checkpoint)
    output = trainer.train(resume_from_checkpoint=checkpoint)
    seconds = time.monotonic() - callback.began
    steps = trainer.state.global_step - callback.step
    args = trainer.args
    examples = steps * args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    if not trainer.is_world_process_zero():  # one report per run, from the main process
        return output, callback.step
    summary = report.write_run_report(Path(recipe.output_dir), trainer.state.log_history, output.metrics, seconds,
                                      steps, examples, f"{type(trainer).__name__} {Path(recipe.output_dir).name}")
    log.info("trained %d steps (%d -> %d) in %.1f s, %.2f steps/s, %.1f examples/s, %s tokens/s, peak GPU memory "
             "%s GiB, mean loss %.4f; summary and loss curve in %s", steps, callback.step, trainer.state.global_step,
             seconds, summary["steps_per_s"], summary["examples_per_s"], summary["tokens_per_s"],
             summary["peak_gpu_memory_gib"], output.training_loss, recipe.output_dir)
    return output, callback.step


def result(trainer, output, start_step: int, final_dir: Path) -> TrainResult:
    """The run's TrainResult."""
    return TrainResult(final_dir=final_dir, global_step=trainer.state.global_step, start_step=start_step,
                       train_loss=float(output.training_loss), log_history=list(trainer.state.log_history))
