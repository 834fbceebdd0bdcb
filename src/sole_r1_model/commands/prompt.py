"""`sole-r1 prompt`: write the exact model inputs of an offline scoring run, without calling any model.

For each model call t (key frames 1..K-1) writes DIR/step_{t:03d}.png (the composite image exactly as the
model sees it, after smart_resize) and DIR/step_{t:03d}.json (the chat messages, official shape), plus
DIR/index.json listing which frames and previous progress each step used.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from PIL import Image

from sole_r1_model.composite import VARIANTS, CompositeFrameBuilder, variant_for_cameras
from sole_r1_model.frames import DEFAULT_NUM_KEY_FRAMES, read_episode_key_frames
from sole_r1_model.prompt import build_messages
from sole_r1_model.rewarder import ProgressQuery

log = logging.getLogger("sole_r1.prompt")

EPILOG = """examples:
  sole-r1 prompt --task "Pick up the cube from the table." --side-by-side episode.mp4 --out prompts/
  sole-r1 prompt --task "open the drawer" --external front.mp4 --wrist wrist.mp4 --out p/ \\
      --previous 0 8 10 22 34 37 35 32 35
--previous gives the previous progress written into each call's question (call 1 is officially 0); default 0."""


def register(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `prompt` subcommand."""
    p = subparsers.add_parser("prompt", help="write the exact SOLE-R1 prompts (images + chat JSON) for a video",
                              description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help="task description, as the robot was instructed")
    views = p.add_mutually_exclusive_group(required=True)
    views.add_argument("--side-by-side", metavar="VIDEO", help="video with external (left) | wrist (right) halves")
    views.add_argument("--external", metavar="VIDEO", help="external-camera video (add --wrist for the wrist one)")
    p.add_argument("--wrist", metavar="VIDEO", help="wrist-camera video aligned with --external")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--previous", nargs="+", type=float, metavar="P",
                   help="previous progress (%%) for calls 1..K-1, one value per call")
    p.add_argument("--variant", default="full", choices=sorted(VARIANTS),
                   help="layout and question (default: full; external_only when there is no wrist video)")
    p.add_argument("--key-frames", type=int, default=DEFAULT_NUM_KEY_FRAMES, metavar="K",
                   help=f"key frames per video (default {DEFAULT_NUM_KEY_FRAMES}); calls = K-1")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Write one PNG + JSON per model call; exit code 0 on success, 2 on bad input."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.wrist and not args.external:
        log.error("--wrist goes with --external (a side-by-side video already holds the wrist view)")
        return 2
    if args.key_frames < 2:
        log.error("--key-frames must be >= 2 (frame 0 is 0 %% without a call)")
        return 2
    if args.out.exists() and not args.out.is_dir():
        log.error("--out %s is a file; give a folder (it is created when missing)", args.out)
        return 2
    try:
        episode = read_episode_key_frames(args.external or args.side_by_side, args.wrist,
                                          side_by_side=bool(args.side_by_side), num_key_frames=args.key_frames)
        variant = variant_for_cameras(args.variant, episode.wrist is not None)
        previous = _previous(args.previous, len(episode.key_indices) - 1)
        steps = _write_steps(args, episode, variant, previous)
    except (ValueError, OSError) as exc:  # unreadable video, unwritable --out
        log.error("%s", exc)
        return 2
    log.info("wrote %d prompts (variant %s) to %s", len(steps), variant, args.out)
    return 0


def _previous(values, calls: int) -> list:
    """One previous-progress value per call (0 for all when not given)."""
    if not values:
        return [0.0] * calls
    if len(values) != calls:
        raise ValueError(f"--previous needs one value per model call: {calls} calls, got {len(values)} values")
    return list(values)


def _write_steps(args: argparse.Namespace, episode, variant: str, previous: list) -> list:
    """Build and write every step's composite image and messages; return the index entries."""
    args.out.mkdir(parents=True, exist_ok=True)
    builder = CompositeFrameBuilder(variant=variant)
    ext, wst, keys = episode.external, episode.wrist, episode.key_indices
    steps = []
    for t in range(1, len(keys)):
        query = ProgressQuery(task=args.task, external=(ext[0], ext[t - 1], ext[t]),
                              wrist=None if wst is None else (wst[0], wst[t - 1], wst[t]),
                              previous_progress=previous[t - 1], query_index=t)
        image, messages = build_messages(query, variant, builder)
        Image.fromarray(image).save(args.out / f"step_{t:03d}.png")
        (args.out / f"step_{t:03d}.json").write_text(json.dumps(messages, indent=2, ensure_ascii=False))
        steps.append({"step": t, "image": f"step_{t:03d}.png", "messages": f"step_{t:03d}.json",
                      "frames": {"first": keys[0], "previous": keys[t - 1], "current": keys[t]},
                      "previous_progress": previous[t - 1], "image_size": [image.shape[1], image.shape[0]]})
    index = {"task": args.task, "variant": variant, "num_frames": episode.num_frames, "key_frames": keys,
             "steps": steps}
    (args.out / "index.json").write_text(json.dumps(index, indent=2, ensure_ascii=False))
    return steps
