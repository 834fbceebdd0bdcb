"""Supervised fine-tuning of a Qwen-VL-family model on SOLE-R1 examples with TRL's SFTTrainer.

The loss covers the assistant completion only (`<think>...</think><answer>N%</answer><|im_end|>`): TRL's
vision collator tokenises prompt (with the image) and completion separately and sets every prompt, image and
padding label to -100 (`completion_only_loss`). Full fine-tuning or LoRA, checkpoints every `save_steps`,
resume, TensorBoard, and the export that the `sole_r1` rewarder loads.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from sole_r1_model.training import export, model as model_lib, runner
from sole_r1_model.training.recipe import Recipe

log = logging.getLogger(__name__)


def sft_config(recipe: Recipe, with_eval: bool):
    """TRL SFTConfig of the recipe."""
    from trl import SFTConfig

    return SFTConfig(
        **runner.common_arguments(SFTConfig, recipe, with_eval),
        completion_only_loss=True,
        max_length=recipe.data.max_length,
        # Rows keep their label columns (progress, task, ...); the vision collator ignores them.
        remove_unused_columns=False,
    )


def build_trainer(recipe: Recipe, base_dir: Path, processor, train_dataset, eval_dataset=None):
    """An SFTTrainer for the recipe on the checkpoint in `base_dir` (not yet trained)."""
    from trl import SFTTrainer

    args = sft_config(recipe, eval_dataset is not None)
    dtype = model_lib.weights_dtype(recipe.model, recipe.lora, args.bf16)
    network = model_lib.load_model(recipe.model, base_dir, dtype)
    return SFTTrainer(model=network, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                      processing_class=processor, peft_config=model_lib.lora_config(recipe.lora))


def train_sft(recipe: Recipe, resume: Optional[str] = None) -> runner.TrainResult:
    """Run SFT as the recipe says (resume: None, "latest" or a checkpoint folder) and export the result."""
    run = runner.prepare(recipe)
    output_dir, base_dir, processor = run.output_dir, run.base_dir, run.processor
    train_dataset, eval_dataset = run.train_dataset, run.eval_dataset
    log.info("SFT: %d training rows%s from %s; model %s -> %s", len(train_dataset),
             f", {len(eval_dataset)} eval rows" if eval_dataset is not None else "", recipe.data.train, base_dir,
             output_dir)
    trainer = build_trainer(recipe, base_dir, processor, train_dataset, eval_dataset)
    output, start_step = runner.train(trainer, recipe, resume)
    final_dir = export.export_final(trainer, processor, recipe, base_dir)
    return runner.result(trainer, output, start_step, final_dir)
