"""Parse a SOLE-R1 completion (`<think>...</think><answer>N%</answer>`) into progress and reasoning.

The answer rules follow `get_answer_from_completion` in the official code (philipmit/sole-r1-model,
`reward_server/src/reward_server/utils.py`, identical in Philip-MIT/rewardgen `rewardgen/sole.py`):
search `<answer>(.*?)</answer>` (DOTALL), else `<answer>(.*?)</answer` (a completion cut before the final
`>`), strip, drop every `%`, `int()`, clamp to [-100, 100]. The caller side of the official server
(`reward_server/main.py`) turns an answer that `int()` rejects into the previous step's value; we do the
same and flag the step invalid so it can be counted.
"""
from __future__ import annotations

import dataclasses
import math
import re

PROGRESS_MIN = -100
PROGRESS_MAX = 100

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_ANSWER_UNCLOSED = re.compile(r"<answer>(.*?)</answer", re.DOTALL)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
# A completion cut by the token limit may open <think> and never close it: keep what was said.
_THINK_UNCLOSED = re.compile(r"<think>(.*?)(?:<answer>|$)", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class ParsedAnswer:
    """The progress and reasoning read from one completion."""

    progress: float   # percent in [-100, 100]; the previous progress when valid is False
    reasoning: str    # text inside <think>...</think>, stripped ("" when absent)
    valid: bool       # False when no integer answer could be read
    error: str = ""   # why the answer is invalid; empty when valid


def clamp_progress(value: float) -> float:
    """Clamp a progress percentage to the model's range [-100, 100]."""
    return float(min(PROGRESS_MAX, max(PROGRESS_MIN, value)))


def extract_answer(text: str) -> str | None:
    """Return the raw text between the answer tags (official fallback included), or None when absent."""
    match = _ANSWER.search(text) or _ANSWER_UNCLOSED.search(text)
    return match.group(1) if match else None


def extract_reasoning(text: str) -> str:
    """Return the chain of thought inside <think>...</think> (or an unclosed <think>), stripped."""
    match = _THINK.search(text) or _THINK_UNCLOSED.search(text)
    return match.group(1).strip() if match else ""


def parse_answer(text: str, previous_progress: float) -> ParsedAnswer:
    """Parse one completion; on failure carry `previous_progress` forward and mark the answer invalid."""
    fallback = _finite_or_zero(previous_progress)
    if not isinstance(text, str):
        return ParsedAnswer(fallback, "", False, f"completion is {type(text).__name__}, not text")
    reasoning = extract_reasoning(text)
    raw = extract_answer(text)
    if raw is None:
        return ParsedAnswer(fallback, reasoning, False, "no <answer>...</answer> in the completion")
    answer = raw.strip().replace("%", "")
    try:
        value = int(answer)  # int() like the official code: "12.5" or "about 12" are not answers
    except ValueError:
        return ParsedAnswer(fallback, reasoning, False, f"answer {raw.strip()!r} is not an integer percentage")
    return ParsedAnswer(clamp_progress(value), reasoning, True, "")


def _finite_or_zero(value: float) -> float:
    """A usable carried-forward value: clamped, and 0 when the caller passes NaN, inf or a non-number."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return clamp_progress(value) if math.isfinite(value) else 0.0
