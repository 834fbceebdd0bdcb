"""`sole-r1 synth --out DIR [--tasks ...]`: reward-model training data from scripted and failing rollouts.

Every flag mirrors a field of `sole_r1_model.synth.config.SynthConfig` (defaults and help live there).
"""
from __future__ import annotations

import argparse
import logging

log = logging.getLogger("sole_r1.synth")

EPILOG = """examples:
  sole-r1 synth --out data/synth --tasks metaworld:all robosuite:all --episodes-per-task 8 --workers 16
  sole-r1 synth --out data/synth --tasks 'metaworld/pick-*' robosuite/Lift --holdout-tasks metaworld/door-open-v3
Rerunning the same command resumes: finished episodes are kept and the dataset is rebuilt."""


def register(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `synth` subcommand, one flag per SynthConfig field (sole_r1_config.add_arguments)."""
    from sole_r1_config import add_arguments
    from sole_r1_model.synth.config import SynthConfig

    p = subparsers.add_parser("synth", help="synthesise reward-model training data in simulation",
                              description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p, SynthConfig)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Run synthesis; 0 on success, 1 when some episodes failed (rerun to retry), 2 on bad options."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("robosuite_logs").setLevel(logging.ERROR)
    from sole_r1_model.synth import SynthConfig, run_synth

    from sole_r1_config import from_arguments

    try:
        config = from_arguments(SynthConfig, args)
        result = run_synth(config)
    except (ValueError, KeyError) as exc:
        log.error("%s", exc)
        return 2
    print(f"synth: {result.episodes} episodes ({result.new_episodes} new), {result.examples} examples "
          f"({result.new_examples} new) in {result.seconds:.1f} s with {config.workers} worker(s): "
          f"{result.examples_per_s:.2f} examples/s, {result.steps_per_s:.1f} env steps/s")
    if result.dataset_dir:
        print(f"dataset: {result.dataset_dir}")
    if result.failed:
        log.error("%d episodes failed; rerun the same command to retry them", result.failed)
        return 1
    return 0
