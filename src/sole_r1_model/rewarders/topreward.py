"""`topreward` rewarder: TOPReward's zero-shot progress from token probabilities (Chen et al. 2026, arXiv 2602.19313).

TOPReward (github.com/TOPReward/TOPReward `topreward/clients/qwen.py`; LeRobot `lerobot/rewards/topreward`) shows
an off-the-shelf Qwen-VL model the episode so far, followed by the statement

    The above video shows a robot manipulation trajectory that completes the following task: <task> Decide
    whether the above statement is True or not. The answer is: True

and reads log P(" True") at the final token from one forward pass -- no generation, no fine-tuning. By default
the text is the chat template's user turn cut before its end token, the statement continuing in the same turn
(`add_chat_template: false`, as upstream); `add_chat_template: true` asks in a full turn and scores "True" as the
assistant's reply. The paper min-max normalises log P(True) over the prefixes of a finished episode; a reward
for a running episode needs a value per query, so each query's probabilities are mapped on their own
(`progress_from_log_probs`, docs/reward.md):

    true_vs_false (default)  progress = 100 * P(True) / (P(True) + P(False))
    true                     progress = 100 * P(True)   (TOPReward's reward, exponentiated: same frame order)

Qwen tokenizers hold " True" and " False" as single tokens: one row per query, both read at the last position
(upstream reads P(False) the same way). A tokenizer that splits them (the tiny test model) gets one row per
answer and each word's log-probability as the sum over its tokens, still in one forward pass per batch.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Optional

from sole_r1_model.rewarder import ProgressQuery, ProgressResult
from sole_r1_model.rewarders.config import TOPRewardConfig
from sole_r1_model.rewarders.frame_sequence import image_turn, query_frames
from sole_r1_model.rewarders.hf_loading import load_vlm
from sole_r1_model.rewarders.prompted import CountingRewarder

log = logging.getLogger(__name__)

# TOPReward's prompt texts (upstream `_instruction_reward_prompt_parts`, LeRobot DEFAULT_PROMPT_PREFIX / SUFFIX).
PROMPT_PREFIX = "The above video shows a robot manipulation trajectory that completes the following task: "
QUESTION = "{task} Decide whether the above statement is True or not. The answer is:"
ANSWERS = ("True", "False")


def progress_from_log_probs(log_true: float, log_false: float, mapping: str = "true_vs_false") -> float:
    """Progress percent in [0, 100] from log P(True) and log P(False) (NaN when they are not numbers)."""
    if mapping == "true":
        return 100.0 * math.exp(log_true)
    if mapping != "true_vs_false":
        raise ValueError(f"unknown mapping {mapping!r}; choose true_vs_false or true")
    log_odds = log_true - log_false  # 100 * sigmoid(log-odds), in the form that cannot overflow
    if log_odds >= 0:
        return 100.0 / (1.0 + math.exp(-log_odds))
    odds = math.exp(log_odds)
    return 100.0 * odds / (1.0 + odds)


class TOPRewardRewarder(CountingRewarder):
    """TOPReward on any Qwen-VL checkpoint: P("True") that the frames complete the task, one forward pass per batch."""

    name = "topreward"

    def __init__(self, config: Optional[TOPRewardConfig] = None) -> None:
        """Load the checkpoint with its own processor settings (plus `image_processor_overrides`)."""
        config = config or TOPRewardConfig()
        super().__init__()
        self.config = config
        loaded = load_vlm(config, use_official_image_processor=False,
                          image_processor_overrides=config.image_processor_overrides)
        self.checkpoint, self.processor, self.model, self.device = (loaded.checkpoint, loaded.processor,
                                                                    loaded.model, loaded.device)
        self.tokenizer = self.processor.tokenizer
        # After "The answer is:" the answer follows a space; as a chat reply it opens the turn, without one.
        space = "" if config.add_chat_template else " "
        self.answer_texts = {word: space + word for word in ANSWERS}
        self.answer_ids = {word: self.tokenizer.encode(text, add_special_tokens=False)
                           for word, text in self.answer_texts.items()}
        self.single_token = all(len(ids) == 1 for ids in self.answer_ids.values())
        log.info("topreward rewarder: %s on %s (%s, mapping %s, answers %s)", self.checkpoint, self.device,
                 self.model.dtype, config.mapping, "one token each" if self.single_token else "multi-token")

    def prompt_prefix(self, query: ProgressQuery, num_images: int = 3) -> str:
        """The text before the answer word (chat template applied, image placeholders unexpanded)."""
        question = QUESTION.format(task=query.task)
        if self.config.add_chat_template:
            return self.processor.apply_chat_template(image_turn(num_images, PROMPT_PREFIX + question),
                                                      tokenize=False, add_generation_prompt=True)
        text = self.processor.apply_chat_template(image_turn(num_images, PROMPT_PREFIX), tokenize=False,
                                                  add_generation_prompt=False)
        eos = self.tokenizer.eos_token
        if eos and eos in text:  # upstream cuts at the end token: the statement goes on inside the user turn
            text = text[:text.rindex(eos)]
        return text + question

    def prompt_text(self, query: ProgressQuery) -> str:
        """The exact text whose last word is scored: the prompt prefix followed by the answer "True"."""
        return self.prompt_prefix(query) + self.answer_texts["True"]

    def _score(self, queries: list[ProgressQuery]) -> list[ProgressResult]:
        results: list[Optional[ProgressResult]] = [None] * len(queries)
        prepared = []  # (index, prompt prefix, frames) of the queries that could be prepared
        for index, query in enumerate(queries):
            try:
                frames = query_frames(query, self.config.camera)
                prepared.append((index, self.prompt_prefix(query, len(frames)), frames))
            except ValueError as exc:
                results[index] = self.failed(query, f"cannot build the prompt: {exc}")
        step = self.config.max_batch_size
        for start in range(0, len(prepared), step):
            chunk = prepared[start:start + step]
            for (index, _, _), result in zip(chunk, self._score_chunk(chunk, queries)):
                results[index] = result
        self._count(results)
        return results

    def _score_chunk(self, chunk: list, queries: list[ProgressQuery]) -> list[ProgressResult]:
        """One forward pass for a chunk of prepared queries; a failure makes every query of it invalid."""
        begin = time.monotonic()
        try:
            log_probs = self.answer_log_probs([c[1] for c in chunk], [c[2] for c in chunk])
        except Exception as exc:  # noqa: BLE001 -- e.g. CUDA OOM: answers invalid, keep the control loop alive
            log.exception("topreward rewarder: scoring failed for %d queries", len(chunk))
            latency = time.monotonic() - begin
            return [self.failed(queries[c[0]], f"scoring failed: {type(exc).__name__}: {exc}", latency)
                    for c in chunk]
        latency = time.monotonic() - begin  # the batch's wall time, shared by its queries
        return [self.result(queries[c[0]], log_true, log_false, latency)
                for c, (log_true, log_false) in zip(chunk, log_probs)]

    def answer_log_probs(self, prefixes: list[str], frames: list[list]) -> list[tuple[float, float]]:
        """(log P(True), log P(False)) after each prompt prefix, its frames shown, from one forward pass."""
        import torch

        words = ("True",) if self.single_token else ANSWERS
        rows = [(prefix + self.answer_texts[word], images) for prefix, images in zip(prefixes, frames)
                for word in words]
        inputs = self.processor(text=[r[0] for r in rows], images=[r[1] for r in rows], padding=True,
                                padding_side="left", return_tensors="pt").to(self.device)
        for row, (text, _) in enumerate(rows):
            word = words[row % len(words)]
            ids = self.answer_ids[word]
            if inputs["input_ids"][row, -len(ids):].tolist() != ids:
                raise ValueError(f"the tokenizer merges the answer {self.answer_texts[word]!r} with the prompt "
                                 f"before it; cannot score {text[-40:]!r}")
        keep = max(len(ids) for ids in self.answer_ids.values()) + 1
        with torch.inference_mode():
            logits = self.model(**inputs, logits_to_keep=keep, use_cache=False).logits
        # Left padding puts every row's answer at the end: tail[r, p] is the distribution after position
        # L - keep + p, so an answer of m tokens is predicted at tail indices keep-m-1 ... keep-2.
        tail = torch.log_softmax(logits[:, -keep:].float(), dim=-1).cpu()

        def word_log_prob(row: int, word: str) -> float:
            ids = self.answer_ids[word]
            first = keep - len(ids) - 1
            return float(sum(tail[row, first + j, token] for j, token in enumerate(ids)))

        if self.single_token:
            return [(word_log_prob(row, "True"), word_log_prob(row, "False")) for row in range(len(rows))]
        return [(word_log_prob(2 * q, "True"), word_log_prob(2 * q + 1, "False")) for q in range(len(prefixes))]

    def result(self, query: ProgressQuery, log_true: float, log_false: float, latency: float) -> ProgressResult:
        """The progress of one query from its answer log-probabilities; non-finite values make it invalid."""
        summary = f"log P(True) = {log_true:.4f}, log P(False) = {log_false:.4f}"
        progress = progress_from_log_probs(log_true, log_false, self.config.mapping)
        if not math.isfinite(progress):
            return self.failed(query, f"non-finite answer probabilities ({summary})", latency)
        # No completion exists: raw_text stays empty, and the probabilities go where a reader looks (reasoning).
        return ProgressResult(progress=progress, reasoning=summary, latency=latency, rewarder=self.name)

    def close(self) -> None:
        """Drop the model so its memory can be freed."""
        self.model = None
