"""`sole-r1 annotate DATASET --rewarder NAME...`: per-frame progress of every episode, written into a LeRobot dataset.

Each rewarder scores each episode as `sole-r1 score` scores a video (key frames, previous answer fed back, progress
interpolated to every frame) and gets a `rewards_<label>` column (float32, percent) and, when it writes text, a
`reasoning_<label>` column, added in place in the dataset's own layout (v2.0/v2.1/v3.0: data files, info.json
features, stats). Interrupted runs resume from cached answers; no dataset file is ever left half-written.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from sole_r1_model.composite import VARIANTS
from sole_r1_model.frames import DEFAULT_NUM_KEY_FRAMES

log = logging.getLogger("sole_r1.annotate")

EPILOG = """examples:
  sole-r1 annotate datasets/franka_pick --rewarder sole_r1 --rewarder config/rewarders/openai.yaml
  sole-r1 annotate ~/.cache/huggingface/lerobot/user/so101_pick --rewarder tiny --external top --wrist none
  sole-r1 annotate datasets/reach --rewarder oracle --privileged-column progress.privileged
  sole-r1 annotate datasets/reach --rewarder gpt5=config/rewarders/gpt5_baseline.yaml   # column rewards_gpt5
Cameras: the wrist view defaults to the camera whose name says wrist/hand/gripper, the external view to the first
other camera. Exit code: 0 written, 1 a rewarder or a file failed while scoring, 2 bad arguments or dataset,
130 interrupted (the dataset is unchanged; the same command resumes)."""


def register(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `annotate` subcommand."""
    p = subparsers.add_parser("annotate", help="write rewarder progress per frame into a LeRobot dataset",
                              description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path, metavar="DATASET", help="LeRobot dataset folder (holding meta/ and data/)")
    p.add_argument("--rewarder", required=True, nargs="+", action="extend", metavar="[LABEL=]SPEC",
                   help="backend name, config/rewarders name, YAML file or module:Class; repeatable. The columns "
                        "are rewards_<LABEL> / reasoning_<LABEL> (LABEL: the name, YAML stem or class by default)")
    p.add_argument("--external", metavar="KEY", help="camera feature of the external view (full key or last part)")
    p.add_argument("--wrist", metavar="KEY", help="camera feature of the wrist view, or 'none' (external-only prompt)")
    p.add_argument("--key-frames", type=int, default=DEFAULT_NUM_KEY_FRAMES, metavar="K",
                   help=f"rewarder calls per episode + 1 (default {DEFAULT_NUM_KEY_FRAMES}, as the official tools)")
    p.add_argument("--variant", choices=sorted(VARIANTS), default=None,
                   help="prompt layout (default: the rewarder's own; without a wrist view its external-only form)")
    p.add_argument("--task", help="task description for every episode (default: each episode's own task)")
    p.add_argument("--privileged-column", metavar="COLUMN",
                   help="per-frame column given to rewarders as privileged progress (the oracle reads it)")
    p.add_argument("--no-reasoning", action="store_true", help="write only the rewards_<LABEL> columns")
    p.add_argument("--overwrite", action="store_true", help="replace columns of the same names")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Annotate the dataset; the exit code (see EPILOG)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from sole_r1_model.lerobot_dataset.annotate import AnnotateOptions, RewarderSpec, plan_annotation, run_annotation
    from sole_r1_model.rewarders.config import resolve_spec

    try:
        specs = [RewarderSpec.parse(text) for text in args.rewarder]
        for spec in specs:  # every spec, before the first one spends hours scoring
            resolve_spec(spec.spec)
        options = AnnotateOptions(external=args.external, wrist=args.wrist, num_key_frames=args.key_frames,
                                  variant=args.variant, task=args.task, privileged_column=args.privileged_column,
                                  reasoning=not args.no_reasoning, overwrite=args.overwrite, progress=not args.quiet)
        plan = plan_annotation(args.dataset, specs, options)
    except (ValueError, FileNotFoundError, ImportError, OSError) as exc:
        log.error("%s", exc)
        return 2
    try:
        summaries = run_annotation(plan)
    except KeyboardInterrupt:
        log.error("interrupted; the dataset is unchanged and the answers so far are cached: run the same command "
                  "again to resume")
        return 130
    except (ValueError, FileNotFoundError, ImportError, OSError, RuntimeError) as exc:
        log.error("%s (answers scored so far are cached: run the same command again to resume)", exc)
        return 1
    for s in summaries:
        log.info("%s: %d episodes (%d resumed), %d calls, %d invalid -> %s", s.label, s.episodes, s.resumed,
                 s.calls, s.invalid, ", ".join(s.columns))
        if s.calls and s.invalid:
            log.warning("%s: %d of %d answers invalid (previous progress carried forward)", s.label, s.invalid,
                        s.calls)
    log.info("wrote %s", args.dataset)
    return 0

