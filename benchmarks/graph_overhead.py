"""ROS graph vs in-process: env steps/s of the same loop, and the learner's actor period while it learns.

    .venv/bin/python benchmarks/graph_overhead.py [--steps 400]

1. In-process: the Trainer (same agent, replay, reward shaper, oracle rewarder) on Meta-World reach-v3, 64 px.
2. ROS graph, lockstep: sim_bridge -> reward_node -> learner_node -> safety_gate -> sim_bridge, same settings.
   Both loops step as fast as they can; the ratio is the graph's overhead (target >= 0.9).
3. ROS graph, realtime at 10 Hz: the actor's period p50/p99 while the learner thread updates (target p99 <= 1.1x).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

OVERRIDES = "image_size=64 batch_size=32 num_seed_steps=100 num_expl_steps=100"


def in_process(steps: int, out: str) -> float:
    """Env steps/s of the in-process trainer after its first episode (start-up excluded)."""
    from sole_r1_ros.learning.config import AgentConfig
    from sole_r1_ros.learning.trainer import Trainer, TrainerConfig

    overrides = dict(item.split("=") for item in OVERRIDES.split())
    agent = AgentConfig.preset("serl", **{k: int(v) for k, v in overrides.items()})
    trainer = Trainer(TrainerConfig(suite="metaworld", task="reach-v3", rewarder="oracle", steps=steps, out=out,
                                    max_episode_steps=100, progress_bar=False), agent)
    started = time.perf_counter()
    trainer.run()
    elapsed = time.perf_counter() - started
    trainer.close()
    return steps / elapsed


def in_graph(steps: int, out: str, mode: str) -> dict:
    """Run the sim_metaworld graph; env steps/s from episode wall times, and the learner's actor timing."""
    from sole_r1_ros.runner.graph import resolve_graph
    from sole_r1_ros.runner.launcher import GraphRunner

    graph = resolve_graph("sim_metaworld", {"rewarder": "oracle", "mode": mode, "image_size": 64,
                                            "episode_steps": 100, "total_steps": steps, "run_dir": out,
                                            "agent_overrides": OVERRIDES, "progress_threshold": 101.0})
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
        local = in_process(args.steps, f"{tmp}/inproc")
        lockstep = in_graph(args.steps, f"{tmp}/lockstep", "lockstep")
        realtime = in_graph(args.steps, f"{tmp}/realtime", "realtime")
    print(f"Meta-World reach-v3, 64 px, oracle rewarder, serl preset ({OVERRIDES}), {args.steps} steps")
    print(f"in-process trainer           {local:7.1f} env steps/s")
    print(f"ROS graph, lockstep          {lockstep['steps_per_s']:7.1f} env steps/s  "
          f"ratio {lockstep['steps_per_s'] / local:.2f} (target >= 0.9)")
    p50, p99, period = realtime.get("actor_period_p50_ms"), realtime.get("actor_period_p99_ms"), 100.0
    print(f"ROS graph, realtime 10 Hz    actor period p50 {p50:.1f} ms, p99 {p99:.1f} ms = {p99 / period:.2f}x "
          f"the set period (target <= 1.1x), {realtime.get('updates')} updates during the run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
