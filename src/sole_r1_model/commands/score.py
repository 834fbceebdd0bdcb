"""`sole-r1 score VIDEO... --task "..." --rewarder NAME_OR_YAML --out DIR`: offline progress of finished videos.

For each video: 10 key frames, one rewarder call per key frame after the first (previous answer fed back),
progress interpolated to every frame; writes DIR/<video stem>.json (official model_outputs shape),
DIR/<stem>.mp4 (annotated key frames) and DIR/<stem>.png (progress curve).
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from sole_r1_model.composite import VARIANTS
from sole_r1_model.frames import DEFAULT_NUM_KEY_FRAMES, check_scorable, read_episode_key_frames, read_frames
from sole_r1_model.offline import score_key_frames, write_outputs
from sole_r1_model.records import read_ground_truth

log = logging.getLogger("sole_r1.score")

EPILOG = """examples:
  sole-r1 score episode.mp4 --side-by-side --task "Pick up the cube from the table." --rewarder sole_r1 --out scores/
  sole-r1 score front.mp4 --wrist wrist.mp4 --task "open the drawer" --rewarder config/rewarders/openai.yaml --out s/
Without --wrist or --side-by-side only the external camera is scored (external-only prompt)."""


def register(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `score` subcommand."""
    p = subparsers.add_parser("score", help="score finished videos offline with a rewarder",
                              description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video file, image folder or (T,H,W,3) .npy")
    p.add_argument("--task", required=True, help="task description, as the robot was instructed")
    p.add_argument("--rewarder", required=True, metavar="NAME_OR_YAML",
                   help="backend name (e.g. sole_r1, openai, oracle) or a rewarder YAML file")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    views = p.add_mutually_exclusive_group()
    views.add_argument("--wrist", metavar="VIDEO", help="wrist-camera video aligned with the (single) VIDEO")
    views.add_argument("--side-by-side", action="store_true",
                       help="each VIDEO holds external (left half) | wrist (right half) views")
    p.add_argument("--variant", default=None, choices=sorted(VARIANTS),
                   help="prompt layout (default: the rewarder's own; without wrist frames its external-only form)")
    p.add_argument("--key-frames", type=int, default=DEFAULT_NUM_KEY_FRAMES, metavar="K",
                   help=f"model calls per video + 1 (default {DEFAULT_NUM_KEY_FRAMES}, as the official tools)")
    p.add_argument("--ground-truth", nargs="+", type=Path, metavar="JSON",
                   help="ground-truth JSON per VIDEO ({'task description', 'ground-truth rewards'}): plotted, "
                        "and the progress the oracle rewarder returns")
    p.add_argument("--fps", type=float, default=2.0, help="frame rate of the annotated video (default 2)")
    p.add_argument("--no-video", action="store_true", help="skip the annotated MP4")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Score each video; exit code 0 when every video got at least one valid answer, 1 otherwise, 2 on bad use."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    problem = _check_args(args)
    if problem:
        log.error(problem)
        return 2
    try:  # before the rewarder, which can take a minute to load
        truths = _check_inputs(args)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        return 2
    try:
        from sole_r1_model.rewarders import make_rewarder
    except ImportError as exc:
        log.error("cannot load rewarder backends (sole_r1_model.rewarders): %s", exc)
        return 2
    try:
        rewarder = make_rewarder(args.rewarder)
    except (ValueError, FileNotFoundError, KeyError, ImportError, OSError) as exc:
        log.error("cannot build rewarder %r: %s", args.rewarder, exc)
        return 2
    failed = 0
    with rewarder:
        for i, video in enumerate(args.videos):
            try:
                failed += not _score_one(args, rewarder, Path(video), _stem(args.videos, i), truths[i])
            except (ValueError, OSError) as exc:
                log.error("%s: %s", video, exc)
                failed += 1
    return 1 if failed else 0


def _check_args(args: argparse.Namespace) -> str:
    """Return an error message for inconsistent arguments, or ''."""
    if args.wrist and len(args.videos) != 1:
        return "--wrist pairs with exactly one VIDEO; score several two-camera episodes with --side-by-side"
    if args.key_frames < 2:
        return "--key-frames must be >= 2 (frame 0 is 0 % without a call)"
    if args.ground_truth and len(args.ground_truth) != len(args.videos):
        return f"--ground-truth needs one JSON per VIDEO ({len(args.videos)}), got {len(args.ground_truth)}"
    if not args.task.strip():
        return "--task must describe the task, e.g. \"Pick up the cube from the table.\""
    return ""


def _check_inputs(args: argparse.Namespace) -> list:
    """Open every input (ValueError/OSError naming it); return the ground-truth rewards per video (None without)."""
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; give a folder (it is created when missing)")
    wrist_frames = read_frames(args.wrist, [0]).num_frames if args.wrist else None
    truths = []
    for i, video in enumerate(args.videos):
        num_frames = read_frames(video, [0]).num_frames  # exists, opens, decodes; counts the frames
        check_scorable(video, num_frames)
        if wrist_frames is not None and wrist_frames != num_frames:
            raise ValueError(f"{video} has {num_frames} frames but {args.wrist} has {wrist_frames}; "
                             "external and wrist videos must be frame-aligned")
        truth = _ground_truth(args, i)
        if truth is not None and len(truth) != num_frames:
            raise ValueError(f"{args.ground_truth[i]} has {len(truth)} values but {video} has {num_frames} frames")
        truths.append(truth)
    return truths


def _ground_truth(args: argparse.Namespace, i: int):
    """The ground-truth rewards for video i, or None."""
    if not args.ground_truth:
        return None
    task, rewards = read_ground_truth(args.ground_truth[i])
    if task.strip() != args.task.strip():
        log.warning("ground truth %s is for task %r, scoring %r", args.ground_truth[i], task, args.task)
    return rewards


def _stem(videos: list, i: int) -> str:
    """Output name for video i: its stem, made unique when two inputs share one."""
    stems = [Path(v).stem or Path(v).name for v in videos]
    return stems[i] if stems.count(stems[i]) == 1 else f"{stems[i]}_{i:02d}"


def _score_one(args: argparse.Namespace, rewarder, video: Path, stem: str, truth) -> bool:
    """Score one video and write its outputs; True when at least one answer was valid."""
    start = time.perf_counter()
    episode = read_episode_key_frames(video, args.wrist, args.side_by_side, args.key_frames)
    if truth is not None and len(truth) != episode.num_frames:
        raise ValueError(f"ground truth has {len(truth)} values but the video has {episode.num_frames} frames")
    record = score_key_frames(rewarder, episode.key_indices, episode.num_frames, episode.external, episode.wrist,
                              task=args.task, variant=args.variant, progress=not args.quiet, fps=episode.fps,
                              privileged_progress=truth)
    paths = write_outputs(record, episode.external, episode.wrist, args.out, stem, ground_truth=truth,
                          fps=args.fps, video=not args.no_video)
    log.info("%s: %d frames, %d calls (%d invalid), final progress %.0f%% in %.1f s -> %s", video.name,
             record.num_frames, record.num_calls, record.num_invalid, record.rewards[-1],
             time.perf_counter() - start, ", ".join(str(p) for p in paths.values()))
    return record.num_calls == 0 or record.num_invalid < record.num_calls
