"""Atomic checkpoints: agent + optimisers, training counters and every RNG state (python, numpy, torch, CUDA, and
named numpy Generators such as the replay's), so a resumed run continues the same random streams.

Written to a temporary file in the same directory, fsync'd, then `os.replace`d over the old checkpoint: a crash
leaves either the previous or the new checkpoint, never a torn one. The checkpoint being replaced is kept beside
it as `<name>.prev.pt`, a fallback should the newest one be damaged later (disk, copy, hand editing).
"""
from __future__ import annotations

import dataclasses
import os
import random
import shutil
from typing import Optional

import numpy as np
import torch

from sole_r1_rl.agent import DrQV2Agent


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, or written for another agent config."""


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


def previous_checkpoint_path(path: str) -> str:
    """Where `save_checkpoint` keeps the checkpoint it replaced: checkpoint.pt -> checkpoint.prev.pt."""
    root, extension = os.path.splitext(path)
    return f"{root}.prev{extension}"


def save_checkpoint(path: str, agent: DrQV2Agent, counters: TrainingCounters,
                    generators: Optional[dict] = None, extra: Optional[dict] = None) -> None:
    """Atomically write agent, counters, RNG states and `extra` (plain data) to `path`; the old one becomes
    `previous_checkpoint_path(path)`."""
    payload = {"agent": agent.state_dict(), "counters": dataclasses.asdict(counters),
               "rng": capture_rng_state(generators), "extra": extra or {}}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp.{os.getpid()}"
    with open(temporary, "wb") as handle:
        torch.save(payload, handle)
        handle.flush()
        os.fsync(handle.fileno())
    if os.path.exists(path):
        _keep_previous(path)
    os.replace(temporary, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep_previous(path: str) -> None:
    """Copy `path` to its .prev name without a moment in which `path` is missing (a hard link where possible)."""
    previous = previous_checkpoint_path(path)
    temporary = f"{previous}.tmp.{os.getpid()}"
    try:
        os.link(path, temporary)
    except OSError:   # no hard links on this filesystem (or a stale temporary): copy instead
        shutil.copyfile(path, temporary)
    os.replace(temporary, previous)


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint read from disk; restore the agent first (it checks the config), then the RNG states."""

    path: str
    payload: dict

    @property
    def counters(self) -> TrainingCounters:
        """Progress of the run when it was saved."""
        return TrainingCounters(**self.payload["counters"])

    @property
    def extra(self) -> dict:
        """The plain data saved with it (`save_checkpoint(extra=...)`)."""
        return self.payload.get("extra", {})

    def restore_agent(self, agent: DrQV2Agent) -> None:
        """Load networks and optimisers; an agent with other shapes is a CheckpointError naming the setting."""
        try:
            agent.load_state_dict(self.payload["agent"])
        except ValueError as error:
            raise CheckpointError(f"cannot resume from {self.path}: {error}; to start afresh instead use "
                                  "--no-resume or another run directory") from error

    def restore_rng(self, generators: Optional[dict] = None) -> None:
        """Restore the global RNGs and the given numpy Generators."""
        restore_rng_state(self.payload["rng"], generators)


def read_checkpoint(path: str) -> Checkpoint:
    """Read `path`; a missing file is a FileNotFoundError, an unreadable one a CheckpointError saying what to do."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}: train first, or drop --resume")
    try:
        # weights_only=False: the payload holds RNG tuples and numpy state; only load checkpoints you wrote
        payload = torch.load(path, map_location="cpu", weights_only=False)  # RNG states must stay on the CPU
        if not isinstance(payload, dict) or not {"agent", "counters", "rng"} <= set(payload):
            raise ValueError("not a checkpoint written by save_checkpoint")
    except Exception as error:  # noqa: BLE001 -- a torn or foreign file fails in many ways inside torch.load
        previous = previous_checkpoint_path(path)
        fallback = (f"move the checkpoint before it, {previous}, over it to resume from there, or "
                    if os.path.exists(previous) else "")
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(error).__name__}: {error}); {fallback}"
                              "start afresh with --no-resume or another run directory") from error
    return Checkpoint(path, payload)


def load_checkpoint(path: str, agent: DrQV2Agent, generators: Optional[dict] = None,
                    restore_rng: bool = True) -> tuple[TrainingCounters, dict]:
    """Restore agent (+ optimisers), RNG states and return (counters, extra); clear errors (see read_checkpoint)."""
    checkpoint = read_checkpoint(path)
    checkpoint.restore_agent(agent)
    if restore_rng:
        checkpoint.restore_rng(generators)
    return checkpoint.counters, checkpoint.extra
