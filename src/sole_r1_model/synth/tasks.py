"""Which tasks a synthesis run covers: patterns -> (suite, task) pairs that have a scripted expert here.

Patterns are `suite/task`, shell globs over `suite/task` (`metaworld/pick-*`, `*/Lift`) or `suite:all`. A suite
that cannot run in this Python (LIBERO needs its own venv; ManiSkill needs Vulkan) is skipped with a logged note,
and so is a task without a scripted expert: its episodes would hold no success to learn from.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import logging
import os

log = logging.getLogger("sole_r1.synth")

SUITES = ("metaworld", "robosuite", "maniskill", "libero")
# ManiSkill tasks with a scripted expert in sole_r1_sim.experts_maniskill (class name per task).
MANISKILL_EXPERTS = {"PickCube-v1": "PickCubeExpert"}


@dataclasses.dataclass(frozen=True, order=True)
class TaskRef:
    """One task of one suite."""

    suite: str
    task: str

    @property
    def name(self) -> str:
        """`suite/task`, the form patterns match."""
        return f"{self.suite}/{self.task}"

    @property
    def slug(self) -> str:
        """The task as one path component (LIBERO names hold a '/')."""
        return self.task.replace("/", "__")


def make_task_expert(suite: str, task: str):
    """The scripted expert of any suite's task (sole_r1_sim.experts.make_expert covers Meta-World and RoboSuite)."""
    if suite == "maniskill":
        if task not in MANISKILL_EXPERTS:
            raise KeyError(f"no scripted ManiSkill expert for '{task}'; have {sorted(MANISKILL_EXPERTS)}")
        from sole_r1_sim import experts_maniskill

        return getattr(experts_maniskill, MANISKILL_EXPERTS[task])()
    if suite == "libero":
        from sole_r1_sim.experts_libero import PickPlaceExpert

        return PickPlaceExpert()
    from sole_r1_sim.experts import make_expert

    return make_expert(suite, task)


def _has_expert(suite: str, task: str) -> bool:
    """Whether a scripted expert exists for the task (building one is cheap: no env needed)."""
    if suite == "libero":
        return True  # the pick-and-place expert; tasks without an in/on goal fail loudly at rollout
    try:
        make_task_expert(suite, task)
    except KeyError:
        return False
    return True


# The third-party package each suite needs in this Python (LIBERO lives in its own venv: .venv-libero).
_SUITE_PACKAGES = {"metaworld": "metaworld", "robosuite": "robosuite", "maniskill": "mani_skill.envs",
                   "libero": "libero.libero"}


def suite_unavailable(suite: str) -> str:
    """Why `suite` cannot run in this Python, or '' when it can."""
    os.environ.setdefault("MUJOCO_GL", "egl")  # LIBERO and RoboSuite pick a GL backend at import
    try:
        importlib.import_module(_SUITE_PACKAGES[suite])
    except Exception as error:  # noqa: BLE001  (any import failure means: skip the suite, say why)
        return f"{type(error).__name__}: {error}"
    return ""


def _all_tasks(suite: str) -> list[TaskRef]:
    from sole_r1_sim import list_tasks

    return [TaskRef(suite, task) for task in list_tasks(suite)]


def _suites_of(patterns: tuple) -> list[str]:
    """Suites a pattern list can touch."""
    wanted = []
    for pattern in patterns:
        suite = pattern.split(":", 1)[0] if pattern.endswith(":all") else pattern.split("/", 1)[0]
        for name in SUITES:
            if fnmatch.fnmatchcase(name, suite) and name not in wanted:
                wanted.append(name)
        if not any(fnmatch.fnmatchcase(name, suite) for name in SUITES):
            raise ValueError(f"task pattern {pattern!r}: unknown suite {suite!r}; suites: {', '.join(SUITES)}")
    return wanted


def _match(patterns: tuple, tasks: list[TaskRef], skipped: set) -> list[TaskRef]:
    """Tasks matched by any pattern; a plain name that matches nothing is an error (a typo would pass silently)."""
    chosen: set[TaskRef] = set()
    for pattern in patterns:
        glob = pattern[:-4] + "/*" if pattern.endswith(":all") else pattern
        hits = [t for t in tasks if fnmatch.fnmatchcase(t.name, glob)]
        plain = "*" not in glob and "?" not in glob
        if not hits and plain and glob.split("/", 1)[0] not in skipped:
            raise ValueError(f"task pattern {pattern!r} matches no task; see `sole_r1_sim.list_tasks(suite)`")
        chosen.update(hits)
    return sorted(chosen)


def resolve_tasks(patterns: tuple, holdout: tuple = ()) -> tuple[list[TaskRef], list[TaskRef]]:
    """(training tasks, held-out tasks), sorted; unavailable suites and expert-less tasks skipped with a note."""
    available: list[TaskRef] = []
    skipped: set[str] = set()
    for suite in _suites_of(tuple(patterns) + tuple(holdout)):
        reason = suite_unavailable(suite)
        if reason:
            log.warning("skipping suite %s: it cannot run in this Python (%s)", suite, reason)
            skipped.add(suite)
            continue
        for ref in _all_tasks(suite):
            if _has_expert(ref.suite, ref.task):
                available.append(ref)
            else:
                log.info("skipping %s: no scripted expert", ref.name)
    held = _match(tuple(holdout), available, skipped) if holdout else []
    train = [t for t in _match(tuple(patterns), available, skipped) if t not in held]
    if not train and not held:
        raise ValueError(f"no runnable task matches {list(patterns)} (see the notes above)")
    return train, held
