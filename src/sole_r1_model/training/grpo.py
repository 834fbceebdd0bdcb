"""GRPO of an SFT checkpoint on SOLE-R1 examples with TRL's GRPOTrainer and the verifiable rewards of rewards.py.

For each prompt (composite image + question) the policy samples `grpo.num_generations` completions with the
official sampling (temperature 1.0, top_p 0.9, top_k 50); each is scored by the format, progress-accuracy and
optional length rewards against the row's `progress` label, and the group-relative advantages update the policy
with a KL penalty `grpo.beta` towards the starting checkpoint. The export is the same as SFT's.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from sole_r1_model.training import export, model as model_lib, runner
from sole_r1_model.training.recipe import Recipe
from sole_r1_model.training.rewards import reward_functions

log = logging.getLogger(__name__)


def grpo_config(recipe: Recipe, with_eval: bool, reward_weights: list[float]):
    """TRL GRPOConfig of the recipe."""
    from trl import GRPOConfig

    grpo = recipe.grpo
    return GRPOConfig(
        **runner.common_arguments(GRPOConfig, recipe, with_eval),
        num_generations=grpo.num_generations,
        max_completion_length=grpo.max_completion_length,
        temperature=grpo.temperature,
        top_p=grpo.top_p,
        top_k=grpo.top_k,
        beta=grpo.beta,
        num_iterations=grpo.num_iterations,
        reward_weights=reward_weights,
        remove_unused_columns=False,  # the reward functions read the label columns
    )


def check_batch(recipe: Recipe, num_processes: int) -> None:
    """GRPO needs whole groups in a generation batch: per-device batch x processes divisible by num_generations."""
    completions = recipe.optim.per_device_batch_size * num_processes * recipe.optim.gradient_accumulation_steps
    if completions % recipe.grpo.num_generations:
        raise ValueError(f"GRPO: optim.per_device_batch_size x processes x gradient_accumulation_steps = {completions} "
                         f"completions per step must be a multiple of grpo.num_generations "
                         f"({recipe.grpo.num_generations})")


def build_trainer(recipe: Recipe, base_dir: Path, processor, train_dataset, eval_dataset=None):
    """A GRPOTrainer for the recipe on the checkpoint in `base_dir` (not yet trained)."""
    from accelerate import PartialState
    from trl import GRPOTrainer

    check_batch(recipe, PartialState().num_processes)
    grpo = recipe.grpo
    functions, weights = reward_functions(grpo.format_weight, grpo.accuracy_weight, grpo.tolerance,
                                          grpo.length_weight, grpo.length_target)
    args = grpo_config(recipe, eval_dataset is not None, weights)
    dtype = model_lib.weights_dtype(recipe.model, recipe.lora, args.bf16)
    policy = model_lib.load_model(recipe.model, base_dir, dtype)
    return GRPOTrainer(model=policy, reward_funcs=functions, args=args, train_dataset=train_dataset,
                       eval_dataset=eval_dataset, processing_class=processor,
                       peft_config=model_lib.lora_config(recipe.lora))


def train_grpo(recipe: Recipe, resume: Optional[str] = None) -> runner.TrainResult:
    """Run GRPO as the recipe says (resume: None, "latest" or a checkpoint folder) and export the result."""
    run = runner.prepare(recipe)
    output_dir, base_dir, processor = run.output_dir, run.base_dir, run.processor
    train_dataset, eval_dataset = run.train_dataset, run.eval_dataset
    log.info("GRPO: %d prompts x %d generations; model %s -> %s", len(train_dataset), recipe.grpo.num_generations,
             base_dir, output_dir)
    trainer = build_trainer(recipe, base_dir, processor, train_dataset, eval_dataset)
    output, start_step = runner.train(trainer, recipe, resume)
    final_dir = export.export_final(trainer, processor, recipe, base_dir)
    return runner.result(trainer, output, start_step, final_dir)
