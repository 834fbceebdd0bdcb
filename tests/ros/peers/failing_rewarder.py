"""A test-only Rewarder that follows a script of answers and failures, and records every query it was given.

Script steps (one per `score` call, the last one repeats): "valid:N" answers N %, "raise" raises RuntimeError,
"sleep:S" answers only after S seconds (to exceed a timeout), "garbage" returns unparsable model text (parsed by
the real SOLE-R1 parser, so it is invalid for the same reason a real model's garbage is).
"""
from __future__ import annotations

import threading
import time
from typing import Sequence

from sole_r1_model.parsing import parse_answer
from sole_r1_model.rewarder import ProgressQuery, ProgressResult, Rewarder

DEFAULT_SCRIPT = ("valid:40", "raise", "sleep:1.5", "garbage", "valid:70")


class FailingRewarder(Rewarder):
    """Answers by script; `queries` holds every ProgressQuery received, in order."""

    name = "failing"

    def __init__(self, script: Sequence[str] = DEFAULT_SCRIPT) -> None:
        if not script:
            raise ValueError("the script needs at least one step")
        self.script = list(script)
        self.queries: list[ProgressQuery] = []
        self.calls = 0
        self._lock = threading.Lock()

    def _score(self, queries: list[ProgressQuery]) -> list[ProgressResult]:
        with self._lock:
            step = self.script[min(self.calls, len(self.script) - 1)]
            self.calls += 1
            self.queries.extend(queries)
        kind, _, value = step.partition(":")
        if kind == "raise":
            raise RuntimeError("scripted rewarder failure")
        if kind == "sleep":
            time.sleep(float(value))
            return [self._answer(q, "<think>slow</think><answer>99%</answer>") for q in queries]
        if kind == "garbage":
            return [self._answer(q, "percentag fir riter><taining86 swer") for q in queries]
        if kind == "valid":
            return [self._answer(q, f"<think>step {self.calls}</think><answer>{int(value)}%</answer>") for q in queries]
        raise ValueError(f"unknown script step {step!r}")

    def _answer(self, query: ProgressQuery, text: str) -> ProgressResult:
        parsed = parse_answer(text, query.previous_progress)
        return ProgressResult(progress=parsed.progress, reasoning=parsed.reasoning, raw_text=text,
                              valid=parsed.valid, error=parsed.error)


class RecordingRewarder(FailingRewarder):
    """Always answers `10 * query_index` %, so each estimate shows which query it answers."""

    name = "recording"

    def __init__(self) -> None:
        super().__init__(["valid:0"])

    def _score(self, queries: list[ProgressQuery]) -> list[ProgressResult]:
        with self._lock:
            self.calls += 1
            self.queries.extend(queries)
        return [self._answer(q, f"<answer>{10 * q.query_index}%</answer>") for q in queries]
