"""`sole-r1 demo` / `make demo`: the product's main job on its embedded defaults -- the full ROS graph learning a
Meta-World task from pixels, with a rewarder's progress as the only reward, for a bounded time.

The default rewarder is `embedded` (models/embedded): the project's own small SOLE-R1-style model, trained in
simulation, which reasons about both cameras on this CPU. `--rewarder oracle` (the simulator's privileged progress)
is announced with a banner: it shows the loop and its plumbing, not perception.

Nothing learns reach-v3 from pixels in five minutes on a 2-core CPU, so where a policy for the task ships in
models/policy-<task>/ the demo starts from it (announced; its card says how it was trained) and learns on online;
`--from-scratch` starts from random weights instead.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import os
import sys
from pathlib import Path

import yaml

from sole_r1_ros.runner.graph import resolve_graph
from sole_r1_ros.runner.launcher import GraphRunner

BANNER = """
==================================================================================================
  sole-r1 demo: rewarder = ORACLE -- the simulator's PRIVILEGED progress, not a perception model.
  It demonstrates the closed loop (sim_bridge -> reward_node -> learner -> safety_gate -> sim_bridge),
  not SOLE-R1's perception. Run with --rewarder sole_r1 on a GPU box for the real reward model.
==================================================================================================
"""


EMBEDDED_NOTE = (
    "sole-r1 demo: rewarder = embedded -- the project's own 5.8 M-parameter reward model (models/embedded/README.md),\n"
    "trained from scratch in simulation on tasks other than reach-v3; its progress is the only reward. Its reasoning\n"
    "shows in rviz/Foxglove and in the annotated videos. --rewarder oracle: privileged upper bound.")


# Learning on from a shipped policy: no uniform-random exploration, its critic fitted first (encoder and actor frozen
# for these updates, so a new critic cannot unlearn the policy), and modest acting noise.
POLICY_OVERRIDES = "num_expl_steps=0 policy_warmup_updates=500 stddev_schedule=0.2"


def shipped_policy(task: str) -> str:
    """The policy folder shipped for `task` (models/policy-<task>), or '' when there is none."""
    from sole_r1_rl.policy import PolicyError, resolve_policy

    try:
        return str(resolve_policy(f"policy-{task}"))
    except PolicyError:
        return ""


def policy_note(folder: str) -> str:
    """The announcement of a demo that starts from a shipped policy: where it came from, how well it did."""
    from sole_r1_rl.policy import policy_info

    info = policy_info(folder)
    learnt = ", ".join(f"{key} {info[key]}" for key in ("reward", "env_steps", "true_success") if key in info)
    return (f"sole-r1 demo: starting from the shipped policy {folder} ({learnt}; card: {folder}/README.md), learning "
            "on online from there. --from-scratch: random initial weights.")


def run(args: argparse.Namespace) -> int:
    """Run the closed loop for `args.steps` control steps, then summarise the run directory."""
    # The demo talks to no other machine: keep DDS discovery on this host (export the variable to override).
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    run_dir = Path(args.out or f"runs/{datetime.datetime.now():%Y%m%d-%H%M%S}").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if args.rewarder == "oracle":
        print(BANNER, flush=True)
    elif args.rewarder == "embedded":
        print(EMBEDDED_NOTE, flush=True)
    policy = "" if args.from_scratch else (args.policy or shipped_policy(args.task))
    overrides = args.agent_overrides
    if policy:
        print(policy_note(policy), flush=True)
        overrides = f"{overrides} {POLICY_OVERRIDES}".strip()
    arguments = {"task": args.task, "rewarder": args.rewarder, "mode": args.mode, "image_size": args.image_size,
                 "episode_steps": args.episode_steps, "total_steps": args.steps, "run_dir": str(run_dir),
                 "agent_overrides": overrides, "init_policy": policy}
    graph = resolve_graph("sim_metaworld", arguments)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(
        {"graph": str(graph.path), "arguments": graph.arguments,
         "nodes": [{"name": n.name, "executable": n.executable, "parameters": n.parameters} for n in graph.nodes]},
        sort_keys=False))
    print(f"sole-r1 demo: Meta-World {args.task}, {args.steps} control steps ({args.mode}); writing {run_dir}",
          flush=True)
    code = GraphRunner(graph).run()
    summarise(run_dir)
    return code


def summarise(run_dir: Path) -> None:
    """Print what the run produced and where to look."""
    episodes_csv = run_dir / "episodes.csv"
    if not episodes_csv.is_file():
        print(f"no episode finished; logs above. Run directory: {run_dir}")
        return
    with episodes_csv.open() as handle:
        episodes = list(csv.DictReader(handle))
    last = episodes[-10:]
    true = [int(e["true_success"]) for e in last if e["true_success"] != ""]
    final = [float(e["final_progress"]) for e in last if e["final_progress"] not in ("", "nan")]
    print(f"\n{len(episodes)} episodes, {episodes[-1]['total_steps']} steps. Last {len(last)} episodes: "
          f"mean final perceived progress {sum(final) / max(len(final), 1):.0f}%, "
          f"true success {sum(true)}/{len(true)} (privileged, for evaluation only).")
    for name in ("learning_curve.png", "perceived_vs_true.png", "episodes.csv", "config.yaml", "agent.yaml"):
        if (run_dir / name).exists():
            print(f"  {run_dir / name}")
    for video in sorted((run_dir / "videos").glob("*.mp4"))[:3]:
        print(f"  {video}")
    print(f"  TensorBoard: .venv/bin/tensorboard --logdir {run_dir / 'tensorboard'}")


def register(subparsers) -> None:
    """Add the `demo` subcommand."""
    parser = subparsers.add_parser("demo", help="closed-loop learning demo on Meta-World (bounded time)")
    parser.add_argument("--task", default="reach-v3", help="Meta-World task (default reach-v3)")
    parser.add_argument("--rewarder", default="embedded",
                        help="rewarder spec (default embedded: models/embedded; oracle = PRIVILEGED upper bound)")
    parser.add_argument("--steps", type=int, default=2400, help="control steps in total (default 2400, ~5 min)")
    parser.add_argument("--episode-steps", type=int, default=100, help="time limit per episode (default 100)")
    parser.add_argument("--mode", default="realtime", choices=("realtime", "lockstep"))
    parser.add_argument("--image-size", type=int, default=128,
                        help="camera size seen by the rewarder and the videos (default 128; the learner resizes to "
                             "its own 64 px, --agent-overrides image_size)")
    parser.add_argument("--agent-overrides", default="image_size=64 batch_size=64 num_seed_steps=300 "
                                                     "num_expl_steps=300",
                        help="learner AgentConfig overrides (CPU-friendly defaults)")
    parser.add_argument("--policy", default="",
                        help="policy to start from (folder or name under models/; default: models/policy-<task> "
                             "when it exists)")
    parser.add_argument("--from-scratch", action="store_true", help="start from random weights, not a policy")
    parser.add_argument("--out", help="run directory (default runs/<date-time>)")
    parser.set_defaults(func=run)


if __name__ == "__main__":
    sys.exit(run(argparse.Namespace(task="reach-v3", rewarder="embedded", steps=2400, episode_steps=100,
                                   mode="realtime", image_size=128, agent_overrides="", out=None, policy="",
                                   from_scratch=False)))
