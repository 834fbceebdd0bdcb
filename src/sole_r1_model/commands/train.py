"""`sole-r1 train sft|grpo --recipe YAML [--set section.key=value ...]`: train the reward model (docs/training.md).

Every option lives in the recipe (sole_r1_model.training.recipe); the flags below are shortcuts for the common
overrides and `--set` reaches any key. The same arguments work under `accelerate launch -m sole_r1_model.training`.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Optional

log = logging.getLogger("sole_r1.train")

EPILOG = """examples:
  sole-r1 train sft --recipe sft_tiny --data data/lift --output-dir runs/sft-tiny
  sole-r1 train sft --recipe config/training/sft_small.yaml --set optim.learning_rate=2e-4 --resume
  sole-r1 train grpo --recipe grpo_small --model runs/sft-small/final --data data/lift
  accelerate launch --config_file config/accelerate/fsdp.yaml -m sole_r1_model.training sft --recipe sft_small
A recipe NAME means config/training/NAME.yaml. The result is OUTPUT_DIR/final; score with it through
OUTPUT_DIR/final/rewarder.yaml (sole-r1 score ... --rewarder OUTPUT_DIR/final/rewarder.yaml)."""

# Shortcut flag -> recipe key; None (not given) keeps the recipe's value, so each default stays in recipe.py.
SHORTCUTS = {
    "output_dir": "output_dir",
    "model": "model.path",
    "data": "data.train",
    "eval_data": "data.eval",
    "max_steps": "schedule.max_steps",
    "max_examples": "data.max_examples",
    "lora": "lora.enabled",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by `train sft` and `train grpo`."""
    parser.add_argument("--recipe", metavar="NAME_OR_YAML",
                        help="recipe YAML or a name under config/training/ (default: the recipe.py defaults)")
    parser.add_argument("--output-dir", dest="output_dir", metavar="DIR", help="override output_dir")
    parser.add_argument("--model", metavar="PATH_OR_ID", help="override model.path (folder, hub id, tiny, scratch)")
    parser.add_argument("--data", nargs="+", metavar="DIR", help="override data.train (dataset folders)")
    parser.add_argument("--eval-data", dest="eval_data", nargs="+", metavar="DIR", help="override data.eval")
    parser.add_argument("--max-steps", dest="max_steps", type=int, metavar="N", help="override schedule.max_steps")
    parser.add_argument("--max-examples", dest="max_examples", type=int, metavar="N",
                        help="override data.max_examples (a random subset of the training rows)")
    parser.add_argument("--lora", action=argparse.BooleanOptionalAction, default=None,
                        help="override lora.enabled (LoRA adapters instead of full fine-tuning)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any recipe key, e.g. --set optim.learning_rate=1e-4 (repeatable)")
    parser.add_argument("--resume", nargs="?", const="latest", metavar="CHECKPOINT",
                        help="continue from the latest OUTPUT_DIR/checkpoint-N, or from CHECKPOINT")
    parser.add_argument("--print-recipe", action="store_true", help="print the resolved recipe and exit")


def _add_methods(subparsers: "argparse._SubParsersAction") -> None:
    for method, text in (("sft", "supervised fine-tuning (TRL SFTTrainer, loss on the answer only)"),
                         ("grpo", "GRPO from an SFT checkpoint with verifiable progress rewards")):
        sub = subparsers.add_parser(method, help=text, description=text, epilog=EPILOG,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(sub)
        sub.set_defaults(func=run, method=method)


def register(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `train` subcommand (with `sft` and `grpo`)."""
    parser = subparsers.add_parser("train", help="train the reward model (sft, grpo)", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_methods(parser.add_subparsers(dest="method", required=True, metavar="METHOD"))
    return parser


def build_parser() -> argparse.ArgumentParser:
    """Standalone parser of `python -m sole_r1_model.training` (what accelerate launch runs)."""
    parser = argparse.ArgumentParser(prog="python -m sole_r1_model.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_methods(parser.add_subparsers(dest="method", required=True, metavar="METHOD"))
    return parser


def recipe_path(spec: Optional[str]) -> Optional[Path]:
    """The recipe file for --recipe: a path, or NAME -> config/training/NAME.yaml (None: recipe.py defaults)."""
    if spec is None:
        return None
    from sole_r1_config import resolve_config_path

    return resolve_config_path(spec, "training")


def overrides_of(args: argparse.Namespace) -> list[str]:
    """Shortcut flags as `key=value` overrides, followed by the explicit --set ones (which win)."""
    found = []
    for flag, key in SHORTCUTS.items():
        value = getattr(args, flag, None)
        if value is not None:  # JSON is YAML: the value reads back with its type
            found.append(f"{key}={json.dumps(value)}")
    return found + list(args.overrides)


def run(args: argparse.Namespace) -> int:
    """Train; exit code 0 on success, 2 for a bad recipe, data or arguments."""
    is_main = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(level=logging.INFO if is_main else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from sole_r1_model.training.recipe import load_recipe

    try:
        recipe = load_recipe(recipe_path(args.recipe), tuple(overrides_of(args)))
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    if args.print_recipe:
        import yaml

        print(yaml.safe_dump(recipe.to_dict(), sort_keys=False), end="")
        return 0
    if args.method == "sft":
        from sole_r1_model.training.sft import train_sft as train
    else:
        from sole_r1_model.training.grpo import train_grpo as train
    try:
        result = train(recipe, resume=args.resume)
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    if is_main:
        log.info("done: step %d, mean loss %.4f; checkpoint %s", result.global_step, result.train_loss,
                 result.final_dir)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of `python -m sole_r1_model.training`."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
