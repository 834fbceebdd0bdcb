"""Verifiable GRPO rewards for SOLE-R1 completions, in TRL's reward-function form.

TRL calls each function with the batch's `completions` (conversational: `[{"role": "assistant", "content": text}]`
per row; plain strings also accepted), `completion_ids`, and every extra dataset column as a keyword list
(`progress`, `previous_progress`, `task`, ...). Each returns one float per completion; GRPOTrainer sums them with
the recipe's weights (`grpo.format_weight`, `accuracy_weight`, `length_weight`). Answers are read with the
project's parser (sole_r1_model.parsing, the official rules), so a completion the rewarder cannot parse earns
nothing:

- `format_reward`: 1 when the completion is `<think>reasoning</think><answer>N%</answer>` -- a closed, non-empty
  think block, then a closed answer tag holding an integer percentage -- else 0.
- `progress_accuracy_reward`: 1 - |predicted - label| / 100, clipped at 0 (off by 50 -> 0.5, by >= 100 -> 0); with
  a tolerance band of T points the first T points of error are free: 1 - max(0, |error| - T) / 100. An
  unparsable answer earns 0.
- `length_penalty`: 0 up to `target_tokens` completion tokens, then -(tokens - target) / target, down to -1.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, Optional, Sequence

from sole_r1_model.parsing import clamp_progress, parse_answer

# The official format: think block first, then the answer; whitespace between and after is allowed.
_WELL_FORMED = re.compile(r"^\s*<think>(?P<think>.+?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*$", re.DOTALL)


def completion_text(completion: Any) -> str:
    """The assistant text of one TRL completion (a string, or a message list whose content is text or parts)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    texts = []
    for message in completion or []:
        content = message.get("content", "") if isinstance(message, dict) else message
        if isinstance(content, list):
            content = "".join(part.get("text") or "" for part in content if isinstance(part, dict))
        texts.append(content if isinstance(content, str) else "")
    return "".join(texts)


def is_well_formed(text: str) -> bool:
    """True for `<think>...</think><answer>N%</answer>` with non-empty reasoning and an integer answer."""
    match = _WELL_FORMED.match(text)
    if match is None or not match.group("think").strip() or "<answer>" in match.group("think"):
        return False
    return parse_answer(text, 0.0).valid


def format_reward(completions: Sequence, **kwargs) -> list[float]:
    """1.0 per well-formed completion (see is_well_formed), else 0.0."""
    return [1.0 if is_well_formed(completion_text(c)) else 0.0 for c in completions]


def progress_accuracy(text: str, label: float, tolerance: float = 0.0) -> float:
    """Accuracy reward of one completion against the label progress (percent); 0 when unparsable."""
    parsed = parse_answer(text, float("nan"))
    if not parsed.valid:
        return 0.0
    error = abs(parsed.progress - clamp_progress(float(label)))
    return max(0.0, 1.0 - max(0.0, error - tolerance) / 100.0)


def progress_accuracy_reward(completions: Sequence, progress: Sequence[float], tolerance: float = 0.0,
                             **kwargs) -> list[float]:
    """Per completion: 1 - max(0, |predicted - progress| - tolerance) / 100, clipped at 0; 0 when unparsable."""
    return [progress_accuracy(completion_text(c), label, tolerance) for c, label in zip(completions, progress)]


def length_penalty(completions: Sequence, completion_ids: Optional[Sequence] = None, target_tokens: int = 185,
                   **kwargs) -> list[float]:
    """0 up to target_tokens, then -(tokens - target_tokens) / target_tokens, not below -1."""
    lengths = [len(ids) for ids in completion_ids] if completion_ids is not None else \
        [len(completion_text(c).split()) for c in completions]  # words approximate tokens without ids
    return [-min(1.0, max(0, n - target_tokens) / target_tokens) for n in lengths]


def reward_functions(format_weight: float = 0.2, accuracy_weight: float = 1.0, tolerance: float = 0.0,
                     length_weight: float = 0.0, length_target: int = 185) -> tuple[list[Callable], list[float]]:
    """(functions, weights) for GRPOTrainer; rewards with weight 0 are left out."""
    candidates = [
        (format_reward, format_weight),
        (functools.partial(progress_accuracy_reward, tolerance=tolerance), accuracy_weight),
        (functools.partial(length_penalty, target_tokens=length_target), length_weight),
    ]
    chosen = [(function, weight) for function, weight in candidates if weight > 0]
    if not chosen:
        raise ValueError("every GRPO reward weight is 0: nothing to optimise")
    return [f for f, _ in chosen], [w for _, w in chosen]

