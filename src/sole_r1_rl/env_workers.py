"""The trainer's environments: one env in the learner's process, or several stepping in parallel worker processes.

Both pools answer the same calls: `send_reset(i, seed)` / `send_step(i, action, query, last)` start work on env
i, `receive(i)` returns its `EnvReply` (observation, end flags and, when asked, the privileged values the oracle
rewarder and the episode log read). Between the sends and the receives the workers step at the same time while
the learner does other work (`overlaps`).

Workers are spawned processes (MuJoCo and EGL contexts do not survive a fork), each building its own env with a
picklable factory called with the env index -- `SuiteEnvFactory` for `make_env`, seed + index. Frames travel
pickled through a pipe: 2 x 64x64 RGB is 25 KB a step, ~0.1 ms against the ~15 ms env step (shared memory would
save little and add lifetime bookkeeping). An env exception, a worker that exits, or one silent for
`timeout_s` (at least `STARTUP_TIMEOUT_S` while it builds its env) is an `EnvFailure` naming the env; the worker
is killed and `restart(i)` spawns a fresh one.
"""
from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import signal
import time
import traceback
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

if TYPE_CHECKING:  # sole_r1_sim imports MuJoCo: only the processes that build an env need it
    from sole_r1_sim.contract import ManipulationEnv, Observation

LOG = logging.getLogger("sole_r1.trainer")
STARTUP_TIMEOUT_S = 180.0   # building an env (imports, EGL, assets) may take longer than any step


@dataclasses.dataclass
class EnvReply:
    """What an env returned for a reset or step; privileged values only when the step asked for them."""

    observation: "Observation"
    terminated: bool = False
    truncated: bool = False
    privileged_progress: Optional[float] = None   # PRIVILEGED: for the oracle rewarder only
    true_success: Optional[bool] = None           # PRIVILEGED: logged, never learned from


class EnvFailure(RuntimeError):
    """An env worker raised, exited or stopped answering."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"env {index}: {reason}")
        self.index, self.reason = index, reason


class EnvFailuresExceeded(RuntimeError):
    """More env failures than the run allows (`TrainerConfig.env_restarts`): the run stops."""


@dataclasses.dataclass(frozen=True)
class SuiteEnvFactory:
    """Builds env `index` of a run: `make_env(suite, task)` at `image_size`, seeded `seed + index`."""

    suite: str
    task: str
    image_size: int
    seed: int

    def __call__(self, index: int) -> "ManipulationEnv":
        from sole_r1_sim import make_env

        return make_env(self.suite, self.task, image_size=(self.image_size, self.image_size), seed=self.seed + index)


def step_env(env: "ManipulationEnv", action: np.ndarray, query: bool, last: bool, privileged: bool) -> EnvReply:
    """One env step; privileged progress when a reward query needs it, true success when the episode ends."""
    observation, _, terminated, truncated, _ = env.step(action)
    reply = EnvReply(observation, bool(terminated), bool(truncated))
    done = reply.terminated or reply.truncated
    if privileged and (query or done):
        reply.privileged_progress = float(env.privileged_progress())
    if last or done:
        reply.true_success = bool(env.true_success())
    return reply


class LocalEnvs:
    """One env in this process (`num_envs` 1): each call runs at once and env exceptions propagate."""

    overlaps = False

    def __init__(self, env: "ManipulationEnv", privileged: bool) -> None:
        self.env, self.privileged, self.count = env, privileged, 1
        self._reply: Optional[EnvReply] = None

    def instruction(self, index: int) -> str:
        """The task instruction of env `index`."""
        return self.env.instruction

    def send_reset(self, index: int, seed: int) -> None:
        """Reset env `index` with `seed`."""
        self._reply = EnvReply(self.env.reset(seed=seed)[0])

    def send_step(self, index: int, action: np.ndarray, query: bool, last: bool) -> None:
        """Step env `index`; `query`: a reward query follows, `last`: the trainer ends the episode after it."""
        self._reply = step_env(self.env, action, query, last, self.privileged)

    def receive(self, index: int) -> EnvReply:
        """The reply to the last send."""
        reply, self._reply = self._reply, None
        return reply

    def restart(self, index: int) -> None:
        """Nothing to restart: a failing in-process env stops the run."""
        raise RuntimeError("the in-process env cannot be restarted")

    def close(self) -> None:
        """The env belongs to the trainer, which closes it."""


class EnvWorkers:
    """`count` envs in spawned worker processes (see module docstring); close() stops them all."""

    overlaps = True

    def __init__(self, factory: Callable[[int], "ManipulationEnv"], count: int, privileged: bool,
                 timeout_s: float = 300.0) -> None:
        self.factory, self.count, self.privileged, self.timeout_s = factory, count, privileged, timeout_s
        self._context = multiprocessing.get_context("spawn")
        self._processes: list = [None] * count
        self._connections: list = [None] * count
        self._broken: list = [None] * count
        self._instructions = [""] * count
        try:
            for index in range(count):   # start all, then wait: the workers build their envs in parallel
                self._spawn(index)
            for index in range(count):
                self._instructions[index] = self._answer(index, max(timeout_s, STARTUP_TIMEOUT_S))
        except BaseException:
            self.close()
            raise

    def instruction(self, index: int) -> str:
        """The task instruction of env `index`."""
        return self._instructions[index]

    def send_reset(self, index: int, seed: int) -> None:
        """Start resetting env `index` with `seed`."""
        self._send(index, ("reset", int(seed)))

    def send_step(self, index: int, action: np.ndarray, query: bool, last: bool) -> None:
        """Start stepping env `index` (see LocalEnvs.send_step)."""
        self._send(index, ("step", (np.asarray(action, np.float32), bool(query), bool(last))))

    def receive(self, index: int) -> EnvReply:
        """Wait for env `index`'s reply; EnvFailure when it raised, exited or timed out."""
        return self._answer(index)

    def restart(self, index: int) -> None:
        """Replace worker `index` by a fresh process with a new env (EnvFailure if that one fails to start)."""
        self._kill(index)
        self._spawn(index)
        self._instructions[index] = self._answer(index, max(self.timeout_s, STARTUP_TIMEOUT_S))

    def close(self, grace_s: float = 10.0) -> None:
        """Ask every worker to close its env and exit; kill the ones still there after `grace_s` (safe to call
        twice)."""
        for index in range(self.count):
            if self._processes[index] is not None and self._processes[index].is_alive():
                self._send(index, ("close", None))
        deadline = time.monotonic() + grace_s
        for index in range(self.count):
            if self._processes[index] is not None:
                self._processes[index].join(timeout=max(deadline - time.monotonic(), 0.0))
            self._kill(index)

    # -- pieces
    def _spawn(self, index: int) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=serve_env, args=(index, self.factory, child, self.privileged),
                                        name=f"sole_r1-env-{index}", daemon=True)
        process.start()
        child.close()   # only the worker holds its end: its exit reads as EOF here
        self._processes[index], self._connections[index], self._broken[index] = process, parent, None

    def _send(self, index: int, message: tuple) -> None:
        try:
            self._connections[index].send(message)
        except (OSError, ValueError) as error:   # the worker is gone: receive() reports it
            self._broken[index] = f"cannot send to the worker ({type(error).__name__}: {error})"

    def _answer(self, index: int, timeout_s: Optional[float] = None):
        connection, process = self._connections[index], self._processes[index]
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        if self._broken[index] is None and not connection.poll(timeout_s):
            self._broken[index] = f"no answer within {timeout_s:.0f} s (env_timeout_s)"
        if self._broken[index] is None:
            try:
                status, value = connection.recv()
            except (EOFError, OSError):
                process.join(timeout=5)
                self._broken[index] = f"worker process exited (exit code {process.exitcode})"
            else:
                if status == "ok":
                    return value
                self._broken[index] = value
        reason = self._broken[index]
        self._kill(index)
        raise EnvFailure(index, reason)

    def _kill(self, index: int) -> None:
        """Kill worker `index` if it is still running, and forget it."""
        process, connection = self._processes[index], self._connections[index]
        if process is None:
            return
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
        connection.close()
        self._processes[index] = None


def serve_env(index: int, factory: Callable, connection, privileged: bool) -> None:
    """Worker process main: build env `index`, answer reset/step commands until 'close' or the learner is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C stops the learner, which then closes the workers
    try:
        env = factory(index)
    except BaseException as error:  # noqa: BLE001 -- reported to the learner, which decides
        connection.send(("error", f"building the env failed: {_describe(error)}"))
        return
    try:
        connection.send(("ok", env.instruction))
        while True:
            command, payload = connection.recv()
            if command == "close":
                return
            try:
                if command == "reset":
                    reply = EnvReply(env.reset(seed=payload)[0])
                else:
                    action, query, last = payload
                    reply = step_env(env, action, query, last, privileged)
            except Exception as error:  # noqa: BLE001 -- an env bug must reach the learner, not kill silently
                connection.send(("error", _describe(error)))
            else:
                connection.send(("ok", reply))
    except (EOFError, OSError):   # the learner exited
        return
    finally:
        env.close()


def _describe(error: BaseException) -> str:
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return f"{type(error).__name__}: {error}\n{''.join(lines[-6:])}".rstrip()
