"""Orchestration of `sole-r1 synth`: plan episodes, run the unfinished ones (in worker processes), build the dataset.

Determinism: an episode depends only on (seed, suite, task, index) and the content options (SynthConfig.content_key):
its env is built with a per-task seed and reset with the episode seed, so which worker runs it, and in what order,
does not matter. Resume: finished episodes have a marker and are skipped; the dataset is rebuilt from the
per-episode shards on every run.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Optional

os.environ.setdefault("MUJOCO_GL", "egl")  # before any suite imports mujoco (workers import this module first)

from sole_r1_model.synth import writer  # noqa: E402
from sole_r1_model.synth.card import dataset_card  # noqa: E402
from sole_r1_model.synth.config import SynthConfig  # noqa: E402
from sole_r1_model.synth.rollouts import (EpisodePlan, env_seed, labels_for, plan_episode,  # noqa: E402
                                          record_episode)
from sole_r1_model.synth.samples import episode_rows  # noqa: E402
from sole_r1_model.synth.state import task_terms  # noqa: E402
from sole_r1_model.synth.tasks import TaskRef, resolve_tasks  # noqa: E402

log = logging.getLogger("sole_r1.synth")
RUN_FILE = "synth_run.json"
MAX_BATCH = 8  # episodes per worker job


@dataclasses.dataclass
class SynthResult:
    """What a run produced and how fast."""

    dataset_dir: Optional[Path]
    episodes: int            # finished episodes of the selected tasks (training + held out)
    new_episodes: int        # of which this run made
    examples: int            # dataset rows
    new_examples: int
    new_steps: int           # env steps this run
    failed: int              # episodes that raised (no marker: a rerun retries them)
    seconds: float

    @property
    def examples_per_s(self) -> float:
        """Dataset rows made per second of this run."""
        return self.new_examples / self.seconds if self.seconds > 0 else 0.0

    @property
    def steps_per_s(self) -> float:
        """Env steps per second of this run (all workers together)."""
        return self.new_steps / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------------------------------------- one episode
_WORKER: dict = {"config": None, "ref": None, "env": None}


def _init_worker(config: SynthConfig) -> None:
    logging.getLogger("robosuite_logs").setLevel(logging.ERROR)
    _WORKER["config"] = config


def _env_for(ref: TaskRef, config: SynthConfig):
    """This process's env for `ref` (one at a time: a new task closes the previous env)."""
    if _WORKER["ref"] != ref:
        if _WORKER["env"] is not None:
            _WORKER["env"].close()
            _WORKER["env"] = None
        from sole_r1_sim import make_env

        extra = {"camera_preset": config.camera_preset} if config.camera_preset else {}
        _WORKER["env"] = make_env(ref.suite, ref.task, image_size=(config.image_size, config.image_size),
                                  seed=env_seed(config, ref), **extra)
        _WORKER["ref"] = ref
    return _WORKER["env"]


def _close_env() -> None:
    if _WORKER["env"] is not None:
        _WORKER["env"].close()
    _WORKER.update(env=None, ref=None)


def run_episode(plan: EpisodePlan, config: SynthConfig) -> dict:
    """Record one episode and write its rows, video, data.json and marker; returns the marker record."""
    start = time.perf_counter()
    out = Path(config.out)
    old = writer.read_marker(out, plan)
    if old:  # redone under other settings (e.g. held out now): its old video must not linger
        shutil.rmtree(out / old["video"][:-4], ignore_errors=True)
        (out / old["video"]).unlink(missing_ok=True)
    env = _env_for(plan.ref, config)
    episode = record_episode(env, plan, config)
    labels = labels_for(episode, config.label)
    record = {"suite": plan.ref.suite, "task": plan.ref.task, "index": plan.index, "seed": plan.seed,
              "policy": plan.policy, "heldout": plan.heldout, "success": episode.success,
              "num_frames": episode.num_frames, "steps": episode.steps, "max_label": max(labels),
              "content_key": config.content_key(), "num_examples": 0, "rows_sha256": ""}
    if not plan.heldout:
        rows = episode_rows(episode, labels, task_terms(env), config)
        record["rows_sha256"] = writer.write_rows(writer.episode_paths(out, plan)[0], rows)
        record["num_examples"] = len(rows)
    video = writer.write_official(out, episode, labels, config.video_fps)
    record["video"] = str(video.relative_to(out))
    record["seconds"] = round(time.perf_counter() - start, 3)
    writer.write_marker(out, plan, record)
    return record


def _job(batch: list[EpisodePlan]) -> list[dict]:
    """Worker entry: episodes of one task in order; errors are returned (not raised), so one bad episode does
    not stop the run."""
    config = _WORKER["config"]
    records = []
    for plan in batch:
        try:
            records.append(run_episode(plan, config))
        except Exception as error:  # noqa: BLE001
            log.exception("%s/%s %s failed", plan.ref.suite, plan.ref.task, plan.name)
            _close_env()  # the env may be in a broken state
            records.append({"error": f"{type(error).__name__}: {error}", "plan": plan.name, "task": plan.ref.name})
    return records


def batches(todo: list[EpisodePlan], workers: int) -> list[list[EpisodePlan]]:
    """Episodes grouped by task (building an env costs 0.2-15 s), split only as far as keeps every worker busy."""
    by_task: dict[TaskRef, list[EpisodePlan]] = {}
    for plan in todo:
        by_task.setdefault(plan.ref, []).append(plan)
    # With fewer tasks than workers, a task's episodes are shared out; otherwise a task stays on one worker, in
    # batches of at most MAX_BATCH episodes so that the progress bar moves and the load stays balanced.
    pieces = max(1, -(-workers // max(1, len(by_task))))
    out = []
    for plans in by_task.values():
        size = min(MAX_BATCH, -(-len(plans) // pieces))
        out += [plans[i:i + size] for i in range(0, len(plans), size)]
    # Longest first, so a big batch does not start last and leave the other workers idle at the end.
    return sorted(out, key=len, reverse=True)


# ---------------------------------------------------------------------------------------------- the run
def plan_run(config: SynthConfig) -> tuple[list[EpisodePlan], list[EpisodePlan]]:
    """(training plans, held-out plans) of every selected task, in a fixed order."""
    train, held = resolve_tasks(config.tasks, config.holdout_tasks)
    n = config.episodes_per_task
    return ([plan_episode(config, ref, i) for ref in train for i in range(n)],
            [plan_episode(config, ref, i, heldout=True) for ref in held for i in range(n)])


def _check_out_dir(out: Path, config: SynthConfig) -> None:
    """Refuse to mix episodes made with other content options into one dataset."""
    path = out / RUN_FILE
    settings = {"content_key": config.content_key(), **config.content_settings()}
    if path.is_file():
        previous = json.loads(path.read_text())
        if previous.get("content_key") != settings["content_key"]:
            changed = sorted(k for k in settings
                             if json.dumps(previous.get(k)) != json.dumps(settings[k], default=list))
            raise ValueError(f"{out} holds episodes made with other settings ({', '.join(changed)}); "
                             f"use another --out, or delete {out} to start again")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1, sort_keys=True, default=list) + "\n")


def _done(out: Path, plan: EpisodePlan, key: str) -> bool:
    marker = writer.read_marker(out, plan)
    return bool(marker) and marker.get("content_key") == key and marker.get("heldout") == plan.heldout


def run_synth(config: SynthConfig) -> SynthResult:
    """Make (or finish) the synthesis run described by `config`."""
    start = time.perf_counter()
    out = Path(config.out)
    train, held = plan_run(config)
    _check_out_dir(out, config)
    key = config.content_key()
    todo = [p for p in train + held if not _done(out, p, key)]
    if len(todo) < len(train) + len(held):
        log.info("resuming: %d of %d episodes already finished", len(train) + len(held) - len(todo),
                 len(train) + len(held))
    made, failed = _run_jobs(todo, config)
    markers = {(p.ref, p.index): writer.read_marker(out, p) for p in train + held}
    finished = [p for p in train if _done(out, p, key)]
    records = [markers[(p.ref, p.index)] for p in finished]
    held_records = [markers[(p.ref, p.index)] for p in held if _done(out, p, key)]
    dataset_dir = None
    if records:
        card = dataset_card(config, records, held_records)
        if config.quiet:
            from datasets.utils.logging import disable_progress_bar

            disable_progress_bar()
        writer.build_dataset(out, records, finished, card, config.shard_size_mb)
        dataset_dir = out / writer.DATASET_DIR
    return SynthResult(dataset_dir=dataset_dir, episodes=len(records) + len(held_records), new_episodes=len(made),
                       examples=sum(r["num_examples"] for r in records),
                       new_examples=sum(r["num_examples"] for r in made), new_steps=sum(r["steps"] for r in made),
                       failed=failed, seconds=time.perf_counter() - start)


def _run_jobs(todo: list[EpisodePlan], config: SynthConfig) -> tuple[list[dict], int]:
    """Run episodes in this process (workers=1) or a spawn pool; returns (new marker records, failures)."""
    from tqdm import tqdm

    made, failed = [], 0
    bar = tqdm(total=len(todo), unit="episode", desc="synth", disable=config.quiet or not todo)
    jobs = batches(todo, config.workers)
    if config.workers == 1 or len(jobs) <= 1:
        _init_worker(config)
        results = map(_job, jobs)
        pool = None
    else:
        # spawn: a fresh interpreter per worker (fork would copy GL/EGL state and thread pools of the parent).
        pool = multiprocessing.get_context("spawn").Pool(min(config.workers, len(jobs)), _init_worker, (config,))
        results = pool.imap_unordered(_job, jobs)
    try:
        for records in results:
            for record in records:
                if "error" in record:
                    failed += 1
                    log.error("%s %s failed: %s (a rerun retries it)", record["task"], record["plan"], record["error"])
                else:
                    made.append(record)
                bar.update(1)
            bar.set_postfix(examples=sum(r["num_examples"] for r in made), refresh=False)
    except BaseException:
        if pool is not None:
            pool.terminate()  # Ctrl-C: stop now; unfinished episodes have no marker and are redone next run
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
        else:
            _close_env()
    return made, failed
