"""Atomic checkpoints: agent + optimisers, training counters and every RNG state (python, numpy, torch, CUDA, and
named numpy Generators such as the replay's), so a resumed run continues the same random streams.

Written to a temporary file in the same directory, fsync'd, then `os.replace`d over the old checkpoint: a crash
leaves either the previous or the new checkpoint, never a torn one.
"""
from __future__ import annotations

import dataclasses
import os
import random
from typing import Optional

import numpy as np
import torch

from sole_r1_rl.agent import DrQV2Agent


@dataclasses.dataclass
class TrainingCounters:
    """Progress of a run."""

    env_steps: int = 0
    updates: int = 0
    episodes: int = 0


def capture_rng_state(generators: Optional[dict] = None) -> dict:
    """Snapshot of the global python/numpy/torch(/CUDA) RNGs and of the given numpy Generators."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "generators": {name: gen.bit_generator.state for name, gen in (generators or {}).items()}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict, generators: Optional[dict] = None) -> None:
    """Inverse of `capture_rng_state` (generators are restored in place)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, gen in (generators or {}).items():
        if name not in state["generators"]:
            raise KeyError(f"checkpoint has no RNG state for {name!r} (has {sorted(state['generators'])})")
        gen.bit_generator.state = state["generators"][name]


def save_checkpoint(path: str, agent: DrQV2Agent, counters: TrainingCounters,
                    generators: Optional[dict] = None, extra: Optional[dict] = None) -> None:
    """Atomically write agent, counters, RNG states and `extra` (plain data) to `path`."""
    payload = {"agent": agent.state_dict(), "counters": dataclasses.asdict(counters),
               "rng": capture_rng_state(generators), "extra": extra or {}}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp.{os.getpid()}"
    with open(temporary, "wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: str, agent: DrQV2Agent, generators: Optional[dict] = None,
                    restore_rng: bool = True) -> tuple[TrainingCounters, dict]:
    """Restore agent (+ optimisers), RNG states and return (counters, extra); clear error if `path` is missing."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}: train first, or drop --resume")
    # weights_only=False: the payload holds RNG tuples and numpy state; only load checkpoints you wrote
    payload = torch.load(path, map_location="cpu", weights_only=False)  # RNG states must stay on the CPU
    agent.load_state_dict(payload["agent"])
    if restore_rng:
        restore_rng_state(payload["rng"], generators)
    return TrainingCounters(**payload["counters"]), payload.get("extra", {})
