"""`sole-r1 eval EPISODES --rewarder SPEC... | --predictions DIR... --out PATH`: measure rewarders against ground truth.

Scores each episode of a set with each rewarder exactly as `sole-r1 score` does, or reads precomputed
`model_outputs`-shaped predictions, then reports Pearson / MAE against ground-truth progress, VOC, AUROC of
the final progress for success, perceived-success rate, invalid answers and seconds per query: report.json,
report.md (side-by-side table) and a PNG grid of curves next to it. See docs/evaluation.md.
"""
from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from pathlib import Path

from sole_r1_model.composite import VARIANTS
from sole_r1_model.frames import DEFAULT_NUM_KEY_FRAMES

log = logging.getLogger("sole_r1.eval")

EPILOG = """examples:
  sole-r1 eval test_videos/ --rewarder sole_r1 --rewarder config/rewarders/openai.yaml --out results/eval/
  sole-r1 eval --predictions model_outputs/ --ground-truth ground_truth/ --out report.json
  sole-r1 eval ../shared/data/sole_r1_official_lift --rewarder tiny --num-key-frames 3 --limit 1 --out /tmp/e/
EPISODES (or --ground-truth) is a folder in the official layout (<suite>/<task>/<successful|unsuccessful>/
<stem>.mp4 + <stem>/data.json), a folder with ground_truth/ and videos/, or a folder of <stem>.json files.
Exit code: 0 done, 1 some episodes or rewarders could not be evaluated, 2 bad arguments or unreadable inputs."""


def register(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `eval` subcommand."""
    from sole_r1_model.evaluation.episodes import VIEWS
    from sole_r1_model.evaluation.metrics import DEFAULT_SUCCESS_THRESHOLD

    p = subparsers.add_parser("eval", help="evaluate rewarders against ground-truth progress",
                              description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("episodes", nargs="?", type=Path, metavar="EPISODES",
                   help="episode set: ground truth (+ videos to score with --rewarder)")
    p.add_argument("--ground-truth", type=Path, metavar="DIR", help="the episode set, when not given as EPISODES")
    p.add_argument("--rewarder", action="append", default=[], metavar="SPEC",
                   help="rewarder to score the videos with (repeatable): backend name, YAML file, module:Class")
    p.add_argument("--predictions", action="append", default=[], type=Path, metavar="DIR",
                   help="folder of precomputed outputs (official model_outputs JSON, matched by stem; repeatable)")
    p.add_argument("--out", required=True, type=Path, metavar="PATH",
                   help="report.json path, or a folder to write report.json into; report.md, the curve PNG "
                        "and scored predictions go beside it")
    p.add_argument("--num-key-frames", "--key-frames", dest="num_key_frames", type=int,
                   default=DEFAULT_NUM_KEY_FRAMES, metavar="K",
                   help=f"key frames per video, the first not scored (default {DEFAULT_NUM_KEY_FRAMES}, "
                        "as the official tools)")
    p.add_argument("--views", choices=VIEWS, default="auto",
                   help="video layout: side-by-side (external | wrist), two-camera (<stem>.mp4 + <stem>_wrist.mp4), "
                        "single (external only); auto = two-camera when a _wrist video exists, else side-by-side")
    p.add_argument("--variant", default=None, choices=sorted(VARIANTS),
                   help="prompt layout (default: each rewarder's own)")
    p.add_argument("--threshold", type=float, default=DEFAULT_SUCCESS_THRESHOLD, metavar="PERCENT",
                   help=f"final progress counted as perceived success (default {DEFAULT_SUCCESS_THRESHOLD:g})")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="evaluate only the first N episodes (by stem)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG grid of curves")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


class UsageError(Exception):
    """Bad arguments or unreadable inputs: reported in one line, exit code 2."""


def run(args: argparse.Namespace) -> int:
    """Validate every input, then evaluate each predictions folder and each rewarder; return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        plan = _validate(args)
    except UsageError as exc:
        print(f"sole-r1 eval: error: {exc}", file=sys.stderr)
        return 2
    from sole_r1_model.evaluation.report import build_report, write_curves, write_json, write_markdown

    sections = [_predictions_section(p, plan["episodes"], args.threshold) for p in plan["predictions"]]
    not_built = []
    for spec, label in zip(args.rewarder, plan["labels"][len(plan["predictions"]):]):
        section = _rewarder_section(spec, label, plan, args)
        if section is None:  # keep the other rewarders' results: a long run must not be lost to one bad model
            not_built.append(spec)
            print(f"sole-r1 eval: error: cannot build rewarder {spec!r} (see the log above)", file=sys.stderr)
        else:
            sections.append(section)
    if not sections:
        return 1
    report_path, stem = plan["report"], plan["report"].stem
    curves = None if args.no_plot else write_curves(sections, plan["episodes"],
                                                    report_path.with_name(f"{stem}_curves.png"))
    settings = {"views": args.views, "num_key_frames": args.num_key_frames if args.rewarder else None,
                "variant": args.variant, "rewarders_not_built": not_built}
    report = build_report(sections, plan["episodes"], str(plan["root"]), args.threshold, settings)
    write_json(report, report_path)
    write_markdown(report, report_path.with_suffix(".md"), curves)
    for s in report["sections"]:
        log.info("%s: pearson %s, MAE %s, VOC %s, AUROC %s, invalid %s over %d/%d episodes", s["rewarder"],
                 *(_short(s[k]) for k in ("pearson_mean", "mae_mean", "voc_successful_mean", "auroc_final",
                                          "invalid_rate")), s["num_scored"], s["num_episodes"])
    log.info("wrote %s, %s%s", report_path, report_path.with_suffix(".md"), f", {curves}" if curves else "")
    return 1 if not_built or any(s["num_failed"] for s in report["sections"]) else 0


def _validate(args: argparse.Namespace) -> dict:
    """Check arguments and read every input before any rewarder is built; UsageError says what is wrong."""
    from sole_r1_model.evaluation.episodes import EpisodeSetError, check_videos, discover_episodes, load_predictions

    if args.episodes and args.ground_truth:
        raise UsageError("give the episode set once: as EPISODES or as --ground-truth, not both")
    root = args.episodes or args.ground_truth
    if root is None:
        raise UsageError("no episode set: give EPISODES (videos + ground truth) or --ground-truth DIR")
    if not args.rewarder and not args.predictions:
        raise UsageError("nothing to evaluate: give --rewarder SPEC (scores the videos) and/or --predictions DIR")
    if args.num_key_frames < 2:
        raise UsageError("--num-key-frames must be >= 2 (frame 0 is 0 % without a call)")
    if not math.isfinite(args.threshold):
        raise UsageError(f"--threshold must be a percentage, got {args.threshold}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be >= 1, got {args.limit}")
    if not root.exists():
        raise UsageError(f"episode set {root} does not exist")
    try:
        episodes = discover_episodes(root, args.views)[: args.limit]
        predictions = [load_predictions(folder, episodes) for folder in args.predictions]
        if args.rewarder:
            check_videos(episodes)
    except EpisodeSetError as exc:
        raise UsageError(str(exc)) from None
    for spec in args.rewarder:
        _check_spec(spec)
    report = args.out if args.out.suffix.lower() == ".json" else args.out / "report.json"
    if report.parent.exists() and not report.parent.is_dir():
        raise UsageError(f"--out: {report.parent} is a file, not a folder")
    labels = _unique([p.label for p in predictions] + [_spec_label(s) for s in args.rewarder])
    for p, label in zip(predictions, labels):
        p.label = label
    return {"root": root, "episodes": episodes, "predictions": predictions, "labels": labels, "report": report}


def _check_spec(spec: str) -> None:
    """UsageError unless the rewarder spec resolves to a backend and a valid configuration (nothing is loaded)."""
    from sole_r1_model.rewarders.config import resolve_spec

    try:
        resolve_spec(spec)
    except (ValueError, FileNotFoundError, TypeError, OSError) as exc:
        raise UsageError(f"--rewarder {spec!r}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 -- e.g. a YAML syntax error: still a bad argument, in one line
        raise UsageError(f"--rewarder {spec!r}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None


def _spec_label(spec: str) -> str:
    """A short name for a rewarder spec: a YAML file's stem, a class name, or the backend name."""
    if spec.lower().endswith((".yaml", ".yml")):
        return Path(spec).stem
    return spec.rpartition(":")[2] if ":" in spec else spec


def _unique(labels: list) -> list:
    """Labels made unique by numbering repeats: a, a (2), a (3)."""
    out = []
    for label in labels:
        name, n = label, 1
        while name in out:
            n += 1
            name = f"{label} ({n})"
        out.append(name)
    return out


def _slug(label: str) -> str:
    """A folder name for a label."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "rewarder"


def _predictions_section(predictions, episodes, threshold: float):
    """Evaluate one folder of precomputed outputs (episodes without a prediction are listed, not scored)."""
    from sole_r1_model.evaluation.evaluate import evaluate_record
    from sole_r1_model.evaluation.report import Section

    if predictions.missing:
        log.warning("%s: no prediction for %d of %d episodes (e.g. %s); they are left out", predictions.folder,
                    len(predictions.missing), len(episodes), predictions.missing[0])
    evaluations = [evaluate_record(e, predictions.records[e.stem], threshold) for e in episodes
                   if e.stem in predictions.records]
    return Section(predictions.label, "predictions", str(predictions.folder), evaluations,
                   notes={"missing": predictions.missing, "unmatched": len(predictions.unmatched)})


def _rewarder_section(spec: str, label: str, plan: dict, args: argparse.Namespace):
    """Build one rewarder, score every episode with it, save its records; None when it cannot be built."""
    from sole_r1_model.evaluation.evaluate import score_episodes
    from sole_r1_model.evaluation.report import Section
    from sole_r1_model.records import write_records
    from sole_r1_model.rewarders import make_rewarder

    try:
        rewarder = make_rewarder(spec)
    except Exception as exc:  # noqa: BLE001 -- model load failures come in many types; report and stop cleanly
        log.error("cannot build rewarder %r: %s: %s", spec, type(exc).__name__, exc)
        return None
    with rewarder:
        evaluations = score_episodes(rewarder, plan["episodes"], label, args.num_key_frames, args.variant,
                                     args.threshold, progress=not args.quiet)
    # Saved in the official shape so the run can be re-evaluated later with --predictions, without a model.
    folder = plan["report"].with_name(f"{plan['report'].stem}_predictions") / _slug(label)
    for e in evaluations:
        if e.record is not None:
            write_records(e.record, folder / f"{e.stem}.json")
    return Section(label, "rewarder", spec, evaluations, privileged=bool(getattr(rewarder, "privileged", False)),
                   notes={"rewarder_name": rewarder.name, "predictions_folder": str(folder)})


def _short(value) -> str:
    """A number for a log line (n/a when undefined)."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"
