"""Shared base of the rewarders that ask a model with a prompt (transformers, OpenAI-compatible, Gemini).

It owns what they do the same way: the composite image and chat messages per query (per layout variant),
parsing completions into `ProgressResult`s with the previous progress carried forward on failure, turning any
per-query failure into a counted, invalid result, and the per-call overrides the official ZeroMQ protocol
needs (layout variant and temperature for one request). `CountingRewarder` is the counting part alone, for
backends without a prompt (Robometer).
"""
from __future__ import annotations

import abc
import collections
import logging
import math
import threading
from typing import Optional, Sequence

import numpy as np

from sole_r1_model.composite import VARIANTS, CompositeFrameBuilder, variant_for_cameras
from sole_r1_model.parsing import parse_answer
from sole_r1_model.prompt import SYSTEM_PROMPT, build_chat, build_messages, build_user_text
from sole_r1_model.rewarder import ProgressQuery, ProgressResult, Rewarder

log = logging.getLogger(__name__)


def variant_for(query: ProgressQuery, variant: str) -> str:
    """The layout for this query: `variant`, or its external-only form when the query has no wrist frames."""
    return variant_for_cameras(variant, have_wrist=query.wrist is not None)


def carried_forward(query: ProgressQuery) -> float:
    """The previous progress as a safe fallback value (0 when the caller passed NaN/inf)."""
    value = float(query.previous_progress)
    return min(100.0, max(-100.0, value)) if math.isfinite(value) else 0.0


class CountingRewarder(Rewarder, abc.ABC):
    """A Rewarder that counts its queries and invalid answers in `stats` and turns failures into invalid results."""

    def __init__(self) -> None:
        self.stats: collections.Counter = collections.Counter()  # queries, invalid, errors

    def failed(self, query: ProgressQuery, error: str, latency: float = 0.0, raw_text: str = "") -> ProgressResult:
        """An invalid result for a query that got no usable answer (transport, input or model failure)."""
        self.stats["errors"] += 1
        return ProgressResult(progress=carried_forward(query), raw_text=raw_text, valid=False, latency=latency,
                              rewarder=self.name, error=error)

    def _count(self, results: list[ProgressResult]) -> None:
        """Count queries and invalid answers, and log the invalid ones so a user can see why."""
        self.stats["queries"] += len(results)
        for result in results:
            if not result.valid:
                self.stats["invalid"] += 1
                log.debug("%s: invalid answer (%s); progress carried forward", self.name, result.error)
        invalid = sum(not r.valid for r in results)
        if invalid:
            log.info("%s: %d/%d answers invalid in this batch (%d/%d overall)", self.name, invalid, len(results),
                     self.stats["invalid"], self.stats["queries"])


class PromptedRewarder(CountingRewarder, abc.ABC):
    """A Rewarder that sends the SOLE-R1 prompt to a model; `score` also takes a per-call variant/temperature."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        self.variant = variant
        self._builders: dict[str, CompositeFrameBuilder] = {}
        self._call = threading.local()  # per-call overrides, read by _score in the calling thread

    def score(self, queries: Sequence[ProgressQuery], variant: Optional[str] = None,
              temperature: Optional[float] = None) -> list[ProgressResult]:
        """Answer a batch; `variant` / `temperature` override the configured ones for this call only."""
        if variant is not None and variant not in VARIANTS:
            raise ValueError(f"unknown prompt variant {variant!r}; choose one of {sorted(VARIANTS)}")
        if temperature is not None and not (math.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        self._call.variant, self._call.temperature = variant, temperature
        try:
            return super().score(queries)
        finally:
            self._call.variant = self._call.temperature = None

    def _score(self, queries: list[ProgressQuery]) -> list[ProgressResult]:
        variant = getattr(self._call, "variant", None) or self.variant
        results = self._score_prompted(queries, variant, getattr(self._call, "temperature", None))
        self._count(results)
        return results

    @abc.abstractmethod
    def _score_prompted(self, queries: list[ProgressQuery], variant: str,
                        temperature: Optional[float]) -> list[ProgressResult]:
        """Backend-specific batch scoring with the given layout and temperature (None = configured)."""

    def prepare(self, query: ProgressQuery, variant: str) -> tuple[np.ndarray, list[dict]]:
        """Composite image and chat messages for one query (raises ValueError for unusable frames)."""
        variant = variant_for(query, variant)
        builder = self._builders.get(variant)
        if builder is None:
            builder = self._builders[variant] = CompositeFrameBuilder(variant=variant)
        return build_messages(query, variant, builder)

    def prompt_text(self, query: ProgressQuery, variant: Optional[str] = None) -> str:
        """The prompt as text (for logs and the official protocol's `text_inputs`); no image is built."""
        messages = build_chat(build_user_text(query.task, carried_forward(query),
                                              variant_for(query, variant or self.variant)))
        return f"{SYSTEM_PROMPT}\n{messages[1]['content'][1]['text']}"

    def parse(self, query: ProgressQuery, text: str, latency: float) -> ProgressResult:
        """Turn one completion into a result; unparsable text gives an invalid, carried-forward result."""
        parsed = parse_answer(text, carried_forward(query))
        return ProgressResult(progress=parsed.progress, reasoning=parsed.reasoning, raw_text=text,
                              valid=parsed.valid, latency=latency, rewarder=self.name, error=parsed.error)
