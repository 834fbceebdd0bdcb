"""`roboreward` rewarder: RoboReward's discrete end-of-episode score (Lee et al. 2026, arXiv 2601.00675).

RoboReward-4B/-8B (teetone/RoboReward-*, fine-tunes of Qwen3-VL-4B/8B-Instruct) read a rollout and a task and
write "ANSWER: <score>", a score from 1 (no success) to 5 (perfect completion) judged on the final state. We
ask with the model card's prompt about the episode so far (first, previous and current frames of one camera,
frame_sequence.py), decode greedily, and map the score s to progress (s - 1) * 25 %: 1 -> 0, 2 -> 25, 3 -> 50,
4 -> 75, 5 -> 100 (LeRobot's score_to_reward table, in percent). A completion without "ANSWER: <1-5>" is an
invalid answer: the previous progress is carried forward and the answer counted. (LeRobot falls back to any
digit 1-5 in the text, then to score 1, which hides a broken model behind plausible rewards.)

Batching, `generate` (or the static-cache decoder), the checkpoint's sampling defaults being ignored and
failures becoming invalid results are HFRewarder's; this class changes the prompt, the frames and the parsing.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Optional

from sole_r1_model.rewarder import ProgressQuery, ProgressResult
from sole_r1_model.rewarders.config import HFRewarderConfig, RoboRewardConfig
from sole_r1_model.rewarders.frame_sequence import image_turn, query_frames
from sole_r1_model.rewarders.hf import HFRewarder
from sole_r1_model.rewarders.prompted import carried_forward

# The prompt of the teetone/RoboReward-4B and -8B model cards, the task substituted in the last line.
ROBOREWARD_PROMPT = (
    "Given the task, assign a discrete progress score reward (1,2,3,4,5) for the robot in the video in the "
    "format: ANSWER: <score>\n"
    "Rubric for end-of-episode progress (judge only the final state without time limits):\n"
    "1 - No Success: Final state shows no goal-relevant change for the command.\n"
    "2 - Minimal Progress: Final state shows a small but insufficient change toward the goal.\n"
    "3 - Partial Completion: The final state shows good progress toward the goal but violates more than one "
    "requirement or a major requirement.\n"
    "4 - Near Completion: Final state is correct in region and intent but misses a single minor requirement.\n"
    "5 - Perfect Completion: Final state satisfies all requirements.\n"
    "\n"
    "Task: {task}"
)
# The documented answer; "ANSWER: 45" or "ANSWER: 6" are not scores.
ANSWER = re.compile(r"\bANSWER\s*:\s*([1-5])\b", re.IGNORECASE)


def score_to_progress(score: int) -> float:
    """RoboReward's score 1..5 as progress percent: (score - 1) * 25."""
    if not 1 <= score <= 5:
        raise ValueError(f"RoboReward scores are 1..5, got {score!r}")
    return (score - 1) * 25.0


def parse_score(text: str) -> Optional[int]:
    """The score of the first "ANSWER: <1-5>" in a completion, or None when there is none."""
    match = ANSWER.search(text) if isinstance(text, str) else None
    return int(match.group(1)) if match else None


def generation_config(config: RoboRewardConfig) -> HFRewarderConfig:
    """The HFRewarder settings that run RoboReward: its checkpoint, device and sampling; the checkpoint's images."""
    shared = {field.name: getattr(config, field.name) for field in dataclasses.fields(HFRewarderConfig)
              if hasattr(config, field.name)}
    return HFRewarderConfig(**shared, use_official_image_processor=False)


class RoboRewardRewarder(HFRewarder):
    """RoboReward-4B/-8B (or any Qwen3-VL checkpoint) asked for its 1-5 score, mapped to progress percent."""

    name = "roboreward"

    def __init__(self, config: Optional[RoboRewardConfig] = None,
                 generate_overrides: Optional[dict[str, Any]] = None) -> None:
        """Load the checkpoint; `generate_overrides` go to every `generate` call, as for HFRewarder."""
        self.roboreward_config = config or RoboRewardConfig()
        super().__init__(generation_config(self.roboreward_config), generate_overrides)

    def prepare(self, query: ProgressQuery, variant: str) -> tuple[list, list[dict]]:
        """The configured camera's frames and the RoboReward chat turn (`variant` does not apply: no composite)."""
        frames = query_frames(query, self.roboreward_config.camera)
        return frames, image_turn(len(frames), ROBOREWARD_PROMPT.format(task=query.task))

    def prompt_text(self, query: ProgressQuery, variant: Optional[str] = None) -> str:
        """The exact prompt string the model sees (chat template applied, image placeholders unexpanded)."""
        messages = image_turn(3, ROBOREWARD_PROMPT.format(task=query.task))
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def parse(self, query: ProgressQuery, text: str, latency: float) -> ProgressResult:
        """Progress from "ANSWER: <1-5>"; any other completion is invalid, the previous progress carried forward."""
        score = parse_score(text)
        if score is None:
            return ProgressResult(progress=carried_forward(query), raw_text=text, valid=False, latency=latency,
                                  rewarder=self.name, error="no 'ANSWER: <1-5>' in the completion")
        return ProgressResult(progress=score_to_progress(score), raw_text=text, latency=latency, rewarder=self.name)
