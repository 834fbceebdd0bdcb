"""ROS graph vs in-process: env steps/s of the same loop, and the learner's actor period while it learns.

    .venv/bin/python benchmarks/graph_overhead.py [--steps 400]

1. Overhead: the in-process Trainer and the ROS graph in lockstep (sim_bridge -> reward_node -> learner_node ->
   safety_gate -> sim_bridge) on Meta-World reach-v3, 64 px, oracle rewarder, with no gradient updates in either
   (num_seed_steps > steps: random actions). Same env, agent and reward code, so the ratio is the price of the
   graph: five processes, DDS transport of both cameras, the gate, the reward node (target >= 0.9).
2. Learning: the same two loops with updates. The trainer updates synchronously (one update per env step); the
   graph's learner thread updates beside the actor (SERL's split), so the graph does fewer updates per env step and
   its env steps/s is not comparable 1:1 -- both figures and the updates per env step are printed.
3. ROS graph, realtime at 10 Hz: the actor's period p50/p99 while the learner thread updates (target p99 <= 1.1x).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path

LEARN = "image_size=64 batch_size=32 num_seed_steps=100 num_expl_steps=100"


def overrides_for(steps: int, learn: bool) -> str:
    """Agent overrides: LEARN, or LEARN with the seed phase longer than the run (no updates at all)."""
    return LEARN if learn else LEARN.replace("num_seed_steps=100", f"num_seed_steps={steps + 1}")


def in_process(steps: int, out: str, learn: bool) -> dict:
    """Env steps/s (per-episode wall times) and updates of the in-process trainer."""
    from sole_r1_rl.config import AgentConfig
    from sole_r1_rl.run_config import TrainerConfig
    from sole_r1_rl.trainer import Trainer

    overrides = dict(item.split("=") for item in overrides_for(steps, learn).split())
    agent = AgentConfig.preset("serl", **{k: int(v) for k, v in overrides.items()})
    trainer = Trainer(TrainerConfig(suite="metaworld", task="reach-v3", rewarder="oracle", steps=steps, out=out,
                                    max_episode_steps=100, progress_bar=False), agent)
    trainer.run()
    updates = trainer.counters.updates
    trainer.close()
    # Per-episode wall times, as the graph's episode manager records them (start-up and resets excluded in both).
    with open(Path(out) / "episodes.csv") as handle:
        episodes = list(csv.DictReader(handle))
    length = sum(int(e["length"]) for e in episodes)
    return {"steps_per_s": length / sum(int(e["length"]) / float(e["steps_per_s"]) for e in episodes),
            "updates": updates}


def in_graph(steps: int, out: str, mode: str, learn: bool = True) -> dict:
    """Run the sim_metaworld graph; env steps/s from episode wall times, and the learner's actor timing."""
    from sole_r1_ros.runner.graph import resolve_graph
    from sole_r1_ros.runner.launcher import GraphRunner

    graph = resolve_graph("sim_metaworld", {"rewarder": "oracle", "mode": mode, "image_size": 64,
                                            "episode_steps": 100, "total_steps": steps, "run_dir": out,
                                            "agent_overrides": overrides_for(steps, learn),
                                            "progress_threshold": 101.0})
    Path(out).mkdir(parents=True, exist_ok=True)
    log_path = Path(out).parent / f"{Path(out).name}.log"
    with open(log_path, "w") as sink:
        code = GraphRunner(graph, out=sink).run()
    if code != 0 or not (Path(out) / "episodes.csv").is_file():
        raise RuntimeError(f"graph exited with {code}; its log:\n" + log_path.read_text()[-3000:])
    with open(Path(out) / "episodes.csv") as handle:
        episodes = list(csv.DictReader(handle))
    result = {"steps_per_s": sum(int(e["length"]) for e in episodes) / sum(float(e["wall_time_s"]) for e in episodes)}
    timing = Path(out) / "actor_timing.json"
    if timing.is_file():
        result.update(json.loads(timing.read_text()))
    return result


def main() -> int:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("MUJOCO_GL", "egl")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {
            "overhead": (in_process(args.steps, f"{tmp}/inproc-random", learn=False),
                         in_graph(args.steps, f"{tmp}/lockstep-random", "lockstep", learn=False)),
            "learning": (in_process(args.steps, f"{tmp}/inproc", learn=True),
                         in_graph(args.steps, f"{tmp}/lockstep", "lockstep", learn=True)),
        }
        realtime = in_graph(args.steps, f"{tmp}/realtime", "realtime")
    print(f"Meta-World reach-v3, 64 px, oracle rewarder, serl preset ({LEARN}), {args.steps} steps per run")
    for name, (local, graph) in runs.items():
        ratio = graph["steps_per_s"] / local["steps_per_s"]
        target = "  (target >= 0.9)" if name == "overhead" else "  (not 1:1: fewer updates per env step in the graph)"
        print(f"{name:9s} in-process {local['steps_per_s']:6.1f} env steps/s ({local['updates'] / args.steps:.2f} "
              f"updates/step) | ROS lockstep {graph['steps_per_s']:6.1f} env steps/s "
              f"({graph.get('updates', 0) / args.steps:.2f} updates/step) | ratio {ratio:.2f}{target}")
    p50, p99, period = realtime.get("actor_period_p50_ms"), realtime.get("actor_period_p99_ms"), 100.0
    print(f"realtime  10 Hz ROS graph: actor period p50 {p50:.1f} ms, p99 {p99:.1f} ms = {p99 / period:.2f}x the set "
          f"period (target <= 1.1x), {realtime.get('updates')} updates during the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
