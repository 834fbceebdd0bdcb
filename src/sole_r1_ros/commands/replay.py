"""`sole-r1 replay BAG... --rewarder SPEC... --out DIR`: re-score recorded episodes with other rewarders.

Reads the bags the `recorder` node wrote (a bag folder, its .mcap, or a folder of bags; a bag left open by a crash
is read from its whole chunks), scores each episode's cameras with every --rewarder exactly as `sole-r1 score`
does, and compares them with the rewarder that ran live and with the recorded PRIVILEGED progress (simulation):
DIR/report.json + report.md (the metrics of `sole-r1 eval`), DIR/report_curves.png, DIR/<episode>_progress.csv,
and DIR/predictions/<rewarder>/<episode>.json (official shape, re-usable with `sole-r1 eval --predictions`).
No ROS needed: it runs on a GPU box with the bags copied over.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from sole_r1_model.composite import VARIANTS
from sole_r1_model.frames import DEFAULT_NUM_KEY_FRAMES

log = logging.getLogger("sole_r1.replay")

EPILOG = """examples:
  sole-r1 replay runs/real_franka/bags --rewarder sole_r1 --rewarder openai --out results/replay/
  sole-r1 replay runs/sim/bags/episode_00002_* --rewarder oracle --rewarder tiny --num-key-frames 4 --out /tmp/r/
Exit code: 0 done, 1 a rewarder or an episode could not be scored, 2 bad arguments or unreadable bags."""


def register(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `replay` subcommand."""
    from sole_r1_model.evaluation.metrics import DEFAULT_SUCCESS_THRESHOLD

    p = subparsers.add_parser("replay", help="re-score recorded episode bags with other rewarders and compare",
                              description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bags", nargs="+", metavar="BAG", help="bag folder, .mcap file, or a folder holding bags")
    p.add_argument("--rewarder", action="append", default=[], metavar="SPEC",
                   help="rewarder to score the recorded cameras with (repeatable): name, YAML file, module:Class")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--num-key-frames", type=int, default=DEFAULT_NUM_KEY_FRAMES, metavar="K",
                   help=f"key frames per episode, the first not scored (default {DEFAULT_NUM_KEY_FRAMES})")
    p.add_argument("--variant", default=None, choices=sorted(VARIANTS), help="prompt layout (default: the rewarder's)")
    p.add_argument("--threshold", type=float, default=DEFAULT_SUCCESS_THRESHOLD, metavar="PERCENT",
                   help=f"final progress counted as perceived success (default {DEFAULT_SUCCESS_THRESHOLD:g})")
    p.add_argument("--min-frames", type=int, default=2, metavar="N",
                   help="skip episodes with fewer camera frames (e.g. one ended by a reset at once; default 2)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Read every bag, score it with each rewarder, write the comparison; return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from sole_r1_ros.logic.bag_files import BagError
    from sole_r1_ros.logic.bags import read_bags
    from sole_r1_ros.logic import replay

    if args.num_key_frames < 2 or not math.isfinite(args.threshold):
        print("sole-r1 replay: error: --num-key-frames must be >= 2 and --threshold a number", file=sys.stderr)
        return 2
    try:
        kept, skipped = read_bags(args.bags, args.out / "recovered", args.min_frames)
    except (BagError, OSError) as exc:
        print(f"sole-r1 replay: error: {exc}", file=sys.stderr)
        return 2
    if not kept:
        print("sole-r1 replay: error: no bag holds an episode with camera frames", file=sys.stderr)
        return 2
    sections, failed = _sections(args, kept, replay)
    if not sections:
        return 1
    settings = {"num_key_frames": args.num_key_frames, "variant": args.variant, "rewarders_not_built": failed,
                "skipped_bags": skipped}
    paths = replay.write_comparison(args.out, sections, kept, args.threshold, settings)
    log.info("wrote %s, %s, %s and %d progress CSV file(s)", paths["json"], paths["md"], paths["png"],
             len(paths["csv"]))
    return 1 if failed or any(e.error for s in sections for e in s.evaluations) else 0


def _sections(args: argparse.Namespace, episodes: list, replay) -> tuple[list, list]:
    """The recorded rewarder's section, then one per --rewarder (specs that cannot be built are listed)."""
    from sole_r1_model.rewarders import make_rewarder

    sections, failed, labels = [], [], set()
    recorded = replay.recorded_section(episodes, args.threshold)
    if recorded is not None:
        sections.append(recorded)
        labels.add(recorded.label)
    for spec in args.rewarder:
        label = replay.spec_label(spec)
        while label in labels:
            label += "'"
        labels.add(label)
        try:
            rewarder = make_rewarder(spec)
        except Exception as exc:  # noqa: BLE001 -- model load failures come in many types; report, keep the rest
            log.error("cannot build rewarder %r: %s: %s", spec, type(exc).__name__, exc)
            failed.append(spec)
            continue
        with rewarder:
            log.info("scoring %d episode(s) with %s", len(episodes), label)
            sections.append(replay.rewarder_section(rewarder, label, spec, episodes, args.num_key_frames,
                                                    args.variant, args.threshold,
                                                    args.out / "predictions" / replay.slug(label)))
    return sections, failed
