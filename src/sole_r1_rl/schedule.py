"""Schedules as data: a short string such as 'linear(1.0,0.1,500000)' names a value that changes with the step.

Same spelling as DrQ-v2 (`utils.schedule` in facebookresearch/drqv2) so its published configs read unchanged:
  '0.2'                              constant
  'linear(init,final,duration)'      init -> final over `duration` steps, then final
  'step_linear(init,final1,duration1,final2,duration2)'  two linear pieces back to back
"""
from __future__ import annotations

import dataclasses
import re
from typing import Union

_NUMBER = r"\s*([-+0-9.eE]+)\s*"
_LINEAR = re.compile(rf"^linear\({_NUMBER},{_NUMBER},{_NUMBER}\)$")
_STEP_LINEAR = re.compile(rf"^step_linear\({_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}\)$")


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A piecewise-linear schedule: `points` are (step, value) knots; constant before the first and after the last."""

    spec: str
    points: tuple

    def __call__(self, step: Union[int, float]) -> float:
        """The scheduled value at `step`."""
        points = self.points
        if step <= points[0][0]:
            return float(points[0][1])
        for (s0, v0), (s1, v1) in zip(points, points[1:]):
            if step <= s1:
                mix = (step - s0) / (s1 - s0)
                return float((1.0 - mix) * v0 + mix * v1)
        return float(points[-1][1])


def parse_schedule(spec: Union[str, float, int]) -> Schedule:
    """Parse a schedule string (or a number, meaning a constant); raise ValueError saying the accepted forms."""
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Schedule(str(spec), ((0, float(spec)),))
    if not isinstance(spec, str):
        raise ValueError(f"schedule must be a string or number, got {type(spec).__name__}")
    text = spec.strip()
    try:
        return Schedule(text, ((0, float(text)),))
    except ValueError:
        pass
    match = _LINEAR.match(text)
    if match:
        init, final, duration = (float(g) for g in match.groups())
        _check_duration(duration, text)
        return Schedule(text, ((0, init), (duration, final)))
    match = _STEP_LINEAR.match(text)
    if match:
        init, final1, duration1, final2, duration2 = (float(g) for g in match.groups())
        _check_duration(duration1, text)
        _check_duration(duration2, text)
        return Schedule(text, ((0, init), (duration1, final1), (duration1 + duration2, final2)))
    raise ValueError(
        f"cannot parse schedule {spec!r}; use a number ('0.2'), 'linear(init,final,duration)' "
        "or 'step_linear(init,final1,duration1,final2,duration2)'"
    )


def _check_duration(duration: float, text: str) -> None:
    if not duration > 0:
        raise ValueError(f"schedule {text!r}: durations must be > 0")
