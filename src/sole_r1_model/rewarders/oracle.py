"""`oracle` rewarder: the simulator's own progress, passed through -- a privileged diagnostic, not a reward model.

Useful as an upper bound (how well does the learner do with a perfect progress signal?) and to test the graph
without a model. Every result is marked privileged and says so in its text, so an oracle run can never be
mistaken for a SOLE-R1 run in logs, bags or plots.
"""
from __future__ import annotations

import math
from typing import Optional

from sole_r1_model.parsing import clamp_progress
from sole_r1_model.rewarder import ProgressQuery, ProgressResult, Rewarder
from sole_r1_model.rewarders.config import OracleRewarderConfig

ORACLE_LABEL = "PRIVILEGED ORACLE"


class OracleRewarder(Rewarder):
    """Returns `query.privileged_progress` (clamped to [-100, 100]); every result is privileged=True."""

    name = "oracle"
    privileged = True

    def __init__(self, config: Optional[OracleRewarderConfig] = None) -> None:
        self.config = config or OracleRewarderConfig()

    def _score(self, queries: list[ProgressQuery]) -> list[ProgressResult]:
        return [self._one(query) for query in queries]

    @staticmethod
    def _one(query: ProgressQuery) -> ProgressResult:
        """Answer one query from privileged simulator state (ValueError when the caller gave none)."""
        value = query.privileged_progress
        if value is None:
            raise ValueError("the oracle rewarder needs ProgressQuery.privileged_progress (simulator progress); "
                             "it is only available in simulation -- use the sole_r1 or openai rewarder elsewhere")
        if not math.isfinite(float(value)):
            raise ValueError(f"privileged_progress must be a finite percentage, got {value!r}")
        progress = clamp_progress(float(value))
        text = f"{ORACLE_LABEL}: simulator progress {progress:g}% (not a model estimate)"
        return ProgressResult(progress=progress, reasoning=text, raw_text=text, valid=True,
                              rewarder=OracleRewarder.name, privileged=True)
