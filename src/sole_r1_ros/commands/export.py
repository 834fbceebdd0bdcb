"""`sole-r1 export BAG... --format lerobot --out DIR`: recorded episode bags as a LeRobot v3.0 dataset.

One dataset frame per shoulder-camera frame: both cameras as H.264 videos, end-effector pose + gripper as
observation.state, the gated command answering the frame as action, the live rewarder's and the simulator's
progress beside them (sole_r1_ros/logic/lerobot_export.py lists every feature). Written without the `lerobot`
package (its pins conflict with ours), in the on-disk layout LeRobot v3.0 reads. No ROS needed.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("sole_r1.export")

EPILOG = """examples:
  sole-r1 export runs/real_franka/bags --format lerobot --out datasets/franka_pick/
  sole-r1 export runs/sim/bags/episode_00002_* runs/sim/bags/episode_00003_* --format lerobot --fps 10 --out /tmp/ds
Exit code: 0 done, 2 bad arguments or unreadable bags."""


def register(subparsers: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    """Add the `export` subcommand."""
    p = subparsers.add_parser("export", help="export recorded episode bags as a dataset (LeRobot v3.0)",
                              description=__doc__.splitlines()[0], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bags", nargs="+", metavar="BAG", help="bag folder, .mcap file, or a folder holding bags")
    p.add_argument("--format", choices=["lerobot"], default="lerobot", help="dataset format (default lerobot)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="new dataset folder")
    p.add_argument("--fps", type=int, default=None,
                   help="dataset frame rate (default: the first episode's camera rate)")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality, 0 (best) .. 51 (default 18)")
    p.add_argument("--robot-type", default="franka", help="info.json robot_type (default franka)")
    p.add_argument("--min-frames", type=int, default=2, metavar="N",
                   help="skip episodes with fewer camera frames (default 2)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Read the bags and write the dataset; return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from sole_r1_ros.logic.bag_files import BagError
    from sole_r1_ros.logic.bags import read_bags
    from sole_r1_ros.logic.lerobot_export import export_lerobot

    if (args.fps is not None and args.fps < 1) or not 0 <= args.crf <= 51:
        print("sole-r1 export: error: --fps must be >= 1 and --crf in 0..51", file=sys.stderr)
        return 2
    try:
        kept, _ = read_bags(args.bags, args.out.with_name(args.out.name + "_recovered"), args.min_frames)
    except (BagError, OSError) as exc:
        print(f"sole-r1 export: error: {exc}", file=sys.stderr)
        return 2
    if not kept:
        print("sole-r1 export: error: no bag holds an episode with camera frames", file=sys.stderr)
        return 2
    try:
        root = export_lerobot(kept, args.out, args.fps, args.crf, args.robot_type)
    except (ValueError, FileExistsError) as exc:
        print(f"sole-r1 export: error: {exc}", file=sys.stderr)
        return 2
    log.info("wrote a LeRobot v3.0 dataset of %d episode(s), %d frames, to %s", len(kept),
             sum(e.num_frames for e in kept), root)
    return 0
