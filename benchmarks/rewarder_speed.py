"""Queries/s of a rewarder with its reasoning, through `Rewarder.score`, against the tiny model in the same run.

Each query is a real one: (first, previous, current) frames of both cameras cut from a side-by-side video (the
official Lift layout) or, without a video, from a smooth synthetic scene. Batches are filled with queries of
different frames so that no two rows are identical. Prints queries/s per batch size, mean completion length, and
the ratio to the tiny random model (`model: tiny`, same decode settings) measured the same way.

  python benchmarks/rewarder_speed.py --rewarder embedded --video episode.mp4          # CPU, batch 1
  python benchmarks/rewarder_speed.py --rewarder embedded --device cuda --batch-sizes 1 8
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def video_frames(path: str | None, count: int = 25) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """External and wrist frames: the halves of a side-by-side video, or a synthetic moving-block scene."""
    if path:
        from sole_r1_model.frames import read_frames, split_frames

        external, wrist = split_frames(read_frames(path).frames)
        return list(external), list(wrist)
    rng = np.random.default_rng(0)
    base = (rng.random((8, 8, 3)) * 255).astype(np.uint8).repeat(48, 0).repeat(48, 1)
    external, wrist = [], []
    for t in range(count):
        frame = base.copy()
        x = 40 + 10 * t
        frame[150:230, x:x + 80] = (200, 30, 30)
        external.append(frame)
        wrist.append(np.ascontiguousarray(frame[::-1]))
    return external, wrist


def make_queries(task: str, external: list, wrist: list, count: int) -> list:
    """`count` distinct queries walking through the episode (previous = the frame before current)."""
    from sole_r1_model.rewarder import ProgressQuery

    n = len(external)
    queries = []
    for i in range(count):
        cur = 1 + i % (n - 1)
        queries.append(ProgressQuery(task=task, external=(external[0], external[cur - 1], external[cur]),
                                     wrist=(wrist[0], wrist[cur - 1], wrist[cur]),
                                     previous_progress=float(min(100, 4 * (cur - 1))), query_index=cur))
    return queries


def measure(spec, queries: list, batch_size: int, repeats: int) -> dict:
    """Queries/s and mean completion tokens of `spec` at `batch_size` (one warm-up batch first)."""
    from sole_r1_model.rewarders import make_rewarder

    rewarder = make_rewarder(spec)
    try:
        rewarder.score(queries[:batch_size])  # warm-up: model load, compilation, caches
        done, invalid, chars = 0, 0, 0
        start = time.perf_counter()
        for r in range(repeats):
            batch = queries[(r * batch_size) % len(queries):][:batch_size]
            batch = batch if len(batch) == batch_size else queries[:batch_size]
            results = rewarder.score(batch)
            done += len(results)
            invalid += sum(not res.valid for res in results)
            chars += sum(len(res.raw_text) for res in results)
        elapsed = time.perf_counter() - start
    finally:
        rewarder.close()
    return {"batch_size": batch_size, "queries_per_s": done / elapsed, "s_per_query": elapsed / done,
            "invalid": invalid, "queries": done, "mean_completion_chars": chars / max(done, 1)}


def main() -> None:
    """Parse flags, time the rewarder and the tiny baseline, print a table (and JSON)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rewarder", default="embedded", help="rewarder name or YAML (default: embedded)")
    p.add_argument("--video", help="side-by-side video (external | wrist), e.g. an official Lift episode")
    p.add_argument("--task", default="Pick up the cube from the table.")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1])
    p.add_argument("--repeats", type=int, default=8, help="timed batches per figure")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-baseline", action="store_true", help="skip the tiny random model")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()

    from sole_r1_model.rewarders.config import resolve_spec

    external, wrist = video_frames(args.video)
    queries = make_queries(args.task, external, wrist, max(args.batch_sizes) * 4)
    backend, config = resolve_spec(args.rewarder)
    options = {"backend": backend, **{k: v for k, v in vars(config).items()}, "device": args.device}
    if args.device == "cpu":
        options["dtype"] = "float32"
    rows = {"rewarder": [measure(options, queries, b, args.repeats) for b in args.batch_sizes]}
    if not args.no_baseline:
        # The same decode settings on the untrained tiny model: its answers are random, so it decodes to the limit.
        tiny = {**options, "model": "tiny", "use_official_image_processor": True, "image_processor_overrides": {}}
        rows["tiny"] = [measure(tiny, queries, b, args.repeats) for b in args.batch_sizes]
    print(f"{'model':10s} {'batch':>5s} {'q/s':>8s} {'s/query':>8s} {'chars':>6s} {'invalid':>8s}")
    for name, figures in rows.items():
        for f in figures:
            print(f"{name:10s} {f['batch_size']:5d} {f['queries_per_s']:8.2f} {f['s_per_query']:8.3f} "
                  f"{f['mean_completion_chars']:6.0f} {f['invalid']:4d}/{f['queries']}")
    if "tiny" in rows:
        for ours, base in zip(rows["rewarder"], rows["tiny"]):
            print(f"batch {ours['batch_size']}: {ours['queries_per_s'] / base['queries_per_s']:.2f}x the tiny "
                  "model's queries/s")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), **rows}, indent=1))


if __name__ == "__main__":
    main()
