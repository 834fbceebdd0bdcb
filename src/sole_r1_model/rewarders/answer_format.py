"""Format-constrained decoding: the model must write `<think>...</think><answer>N%</answer>` and stop.

The model still chooses every reasoning token and the integer; the constraint only removes tokens that would
break the official answer format. Allowed-token sets come from the tokenizer's vocabulary, computed once, so the
same code serves the tiny byte-level BPE tokenizer (tags are single added tokens) and Qwen's (`<think>` is one
added token, `<answer>` several ordinary ones): every tag is forced as the tokenizer's own encoding of its text.
"""
from __future__ import annotations

import re
from typing import Callable, Union

OPEN_TEXT = "<think>"
CLOSE_TEXT = "</think><answer>"
END_TEXT = "%</answer>"
MAX_ANSWER_TOKENS = 4            # "-100" spelt one character per token (Qwen splits digits)
_NUMBER_TOKEN = re.compile(r"-|-?\d{1,3}")
_NUMBER_PREFIX = re.compile(r"-?\d{0,3}")


class AnswerFormat:
    """Allowed next tokens of one completion, from a per-row state machine over the generated token ids.

    States: forced `<think>` -> free reasoning (tokens without `<`, so no tag can be spelt; `>` stays allowed for
    text such as `20% -> 30%`) until the model picks the first token
    of `</think><answer>` or the think budget is spent -> forced rest of `</think><answer>` -> an optional `-`
    and 1-3 digits -> forced `%</answer>` and EOS.
    """

    def __init__(self, tokenizer, eos_token_id: int, max_think_tokens: int, max_new_tokens: int,
                 device: str = "cpu") -> None:
        """Scan the vocabulary once; ValueError when the tags cannot be forced or the budget is too small."""
        import torch

        special = set(tokenizer.all_special_ids)
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=False,
                                       clean_up_tokenization_spaces=False)
        self.open_ids = _tag_ids(tokenizer, OPEN_TEXT)
        self.close_ids = _tag_ids(tokenizer, CLOSE_TEXT)
        self.end_ids = _tag_ids(tokenizer, END_TEXT) + [int(eos_token_id)]
        free = [i for i, text in enumerate(texts) if text and i not in special and "<" not in text]
        self.number_text = {i: text for i, text in enumerate(texts)
                            if i not in special and _NUMBER_TOKEN.fullmatch(text)}
        if not free or not any(text[-1].isdigit() for text in self.number_text.values()):
            raise ValueError("constrain_format: the tokenizer has no plain-text or digit tokens to choose from")
        # The state machine finds phase boundaries by these first tokens, so they must not be choosable earlier.
        if self.close_ids[0] in free or self.end_ids[0] in self.number_text:
            raise ValueError(f"constrain_format: the tokenizer spells {CLOSE_TEXT!r} or {END_TEXT!r} with "
                             "ordinary text tokens, so the answer format cannot be tracked")
        reserve = len(self.open_ids) + len(self.close_ids) + MAX_ANSWER_TOKENS + len(self.end_ids)
        # Keep room for the whole answer inside max_new_tokens, or generation would cut it off.
        self.think_limit = min(int(max_think_tokens), int(max_new_tokens) - reserve)
        if self.think_limit < 1:
            raise ValueError(f"constrain_format needs max_new_tokens >= {reserve + 1} with this tokenizer "
                             f"(tags and answer take {reserve} tokens), got {max_new_tokens}")
        # A tensor index keeps the per-step masking cheap for a 150k-token vocabulary.
        self._free_or_close = torch.tensor(free + [self.close_ids[0]], dtype=torch.long, device=device)

    def allowed(self, generated: list[int]) -> Union[list[int], "torch.Tensor"]:  # noqa: F821
        """Token ids allowed after the `generated` continuation (never empty)."""
        if len(generated) < len(self.open_ids):
            return [self.open_ids[len(generated)]]
        thought = generated[len(self.open_ids):]
        window = thought[:self.think_limit]
        if self.close_ids[0] in window:
            closing = thought[window.index(self.close_ids[0]):]
        elif len(thought) < self.think_limit:
            return self._free_or_close
        else:
            closing = thought[self.think_limit:]
        if len(closing) < len(self.close_ids):
            return [self.close_ids[len(closing)]]
        answer = closing[len(self.close_ids):]
        if self.end_ids[0] in answer:
            done = len(answer) - answer.index(self.end_ids[0])
            return [self.end_ids[min(done, len(self.end_ids) - 1)]]  # EOS again on finished (padded) rows
        number = "".join(self.number_text[token] for token in answer)
        options = [token for token, text in self.number_text.items() if _NUMBER_PREFIX.fullmatch(number + text)]
        if number[-1:].isdigit():
            options.append(self.end_ids[0])
        return options

    def prefix_allowed_tokens_fn(self, prompt_length: int) -> Callable:
        """The `generate` callback for one left-padded batch whose prompts are `prompt_length` tokens long."""
        def allowed(batch_id: int, input_ids) -> Union[list[int], "torch.Tensor"]:  # noqa: F821
            return self.allowed(input_ids[prompt_length:].tolist())

        return allowed


def _tag_ids(tokenizer, text: str) -> list[int]:
    """The tokenizer's encoding of a tag string, checked to decode back to the same text."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    decoded = tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    if not ids or decoded != text:
        raise ValueError(f"constrain_format: the tokenizer encodes {text!r} as {ids}, which decodes to "
                         f"{decoded!r} (special tokens are dropped from completions); use a checkpoint whose "
                         "reasoning tags are plain or non-special added tokens")
    return ids
