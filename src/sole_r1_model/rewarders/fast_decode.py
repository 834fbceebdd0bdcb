"""Fast decoding for Qwen3-VL-family models: a static KV cache and a fixed-shape decode step that can be compiled.

`model.generate` keeps a dynamic (growing) KV cache, so every decode step has new tensor shapes and runs eagerly,
one small kernel launch after another; on an H100 the 8B model then decodes at ~48 ms/token, far above the
memory-bandwidth bound. Here the prompt is prefilled exactly as `generate` prefills it, its keys/values are copied
into a preallocated `StaticCache`, and each further token runs one step (text model + lm_head) whose inputs all have
the same shapes every step, so `torch.compile(mode="reduce-overhead")` can replay it as a CUDA graph
(benchmarks/reward_latency.py: ~8 ms/token). Greedy results equal `generate(do_sample=False)` token for token,
including left-padded batches (tests/model/test_fast_decode.py).

transformers internals relied on (checked against 5.23): `Qwen3VLModel.get_rope_index` and `.rope_deltas` (M-RoPE
positions), the 4-row position_ids of `Qwen3VLTextModel.forward` (row 0 text position, rows 1-3 M-RoPE), the
`model.model.language_model` / `model.lm_head` split, `StaticCache` layers' `update()` with its in-place
`cumulative_length` write index (there is no cache_position argument any more), and
`masking_utils.create_causal_mask` taking that index as the query offset over a 2-D mask of the cache length.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence, Union

import torch

log = logging.getLogger(__name__)

AllowedFn = Callable[[int, list], Union[Sequence[int], torch.Tensor]]


def sample(logits: torch.Tensor, temperature: float, top_p: float = 1.0, top_k: Optional[int] = None,
           generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """One token per row of `logits` [batch, vocab]: argmax at temperature 0, else top-k then top-p sampling."""
    logits = logits.float()  # generate() also samples in float32, whatever the model dtype
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    vocab = logits.shape[-1]
    k = vocab if not top_k else min(int(top_k), vocab)
    # Sorted descending (top-k of everything when top_k is off), so top-p is a prefix of the sorted row.
    values, indices = torch.topk(logits, k, dim=-1)
    probs = values.softmax(-1)
    # Keep the smallest prefix whose mass reaches top_p: a token goes when the mass before it already reaches
    # top_p (the first token is always kept); vLLM and transformers' TopPLogitsWarper keep the same set.
    probs = probs.masked_fill(probs.cumsum(-1) - probs >= top_p, 0.0)
    choice = torch.multinomial(probs, 1, generator=generator)
    return indices.gather(-1, choice).squeeze(-1)


def prompt_positions(model, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(position_ids [4, batch, prompt], rope_deltas [batch, 1]) of a left-padded prompt, as `generate` builds them.

    Mirrors `Qwen3VLForConditionalGeneration._prepare_position_ids_for_generation`: row 0 is the text position
    (counting real tokens only, so left padding does not shift it), rows 1-3 the M-RoPE (t, h, w) positions from
    `get_rope_index`, which also skips the padding through the attention mask.
    """
    input_ids = inputs["input_ids"]
    mask = inputs.get("attention_mask")
    if mask is None:
        mask = torch.ones_like(input_ids)
    text = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    has_vision = inputs.get("image_grid_thw") is not None or inputs.get("video_grid_thw") is not None
    if has_vision and inputs.get("mm_token_type_ids") is not None:
        rope_kwargs = {key: inputs[key] for key in ("image_grid_thw", "video_grid_thw") if key in inputs}
        vision, deltas = model.model.get_rope_index(input_ids, mm_token_type_ids=inputs["mm_token_type_ids"],
                                                    attention_mask=mask, **rope_kwargs)
    else:
        vision = text.unsqueeze(0).expand(3, -1, -1)
        deltas = torch.zeros(input_ids.shape[0], 1, dtype=torch.long, device=input_ids.device)
    return torch.cat([text.unsqueeze(0), vision.to(text.device)], dim=0), deltas.to(text.device)


class StaticDecoder:
    """Prefill + static-KV-cache decode loop for one (model, batch size, max cache length); reusable across calls."""

    def __init__(self, model, batch_size: int, max_cache_len: int, compile_mode: Optional[str] = None,
                 sync_every: Optional[int] = None) -> None:
        """Allocate the cache lazily (on first prefill); `compile_mode` None = eager, else a torch.compile mode."""
        from transformers import StaticCache

        self.model, self.batch_size, self.max_cache_len = model, int(batch_size), int(max_cache_len)
        self.cache = StaticCache(config=model.config, max_cache_len=self.max_cache_len)
        self.compile_mode, self.fullgraph = compile_mode, True
        self.device = next(model.parameters()).device
        # A host sync per step costs a GPU round trip (~tens of us, and it stalls CUDA-graph replays), so on GPU the
        # "everyone finished" flag is read only every few steps; on CPU the check is free.
        self.sync_every = int(sync_every) if sync_every else (8 if self.device.type == "cuda" else 1)
        self.steps = 0  # decode steps (model calls after the prefill) of the last decode(); for tests and logs
        # The mask lives across steps and is updated in place: one fixed (batch, max_cache_len) tensor, so the
        # compiled step sees the same shape every time.
        self.attention_mask = torch.zeros(self.batch_size, self.max_cache_len, dtype=torch.long, device=self.device)
        self.step = self._compile() if compile_mode else self._step

    def _compile(self):
        return torch.compile(self._step, mode=self.compile_mode, fullgraph=self.fullgraph, dynamic=False)

    def _step(self, token: torch.Tensor, position_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One decode step: token [batch, 1] -> logits [batch, vocab]; all shapes fixed, the cache is written in place.

        The cache's write index is the static layers' `cumulative_length` tensor (transformers >= 5 has no
        cache_position argument); the causal mask uses it as the query offset, so slots not written yet are
        excluded by causality as well as by the zeros of `attention_mask`.
        """
        hidden = self.model.model.language_model(input_ids=token, position_ids=position_ids,
                                                 attention_mask=attention_mask, past_key_values=self.cache,
                                                 use_cache=True).last_hidden_state
        return self.model.lm_head(hidden[:, -1])

    def _call_step(self, token: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        try:
            return self.step(token, position_ids, self.attention_mask)
        except Exception as exc:  # noqa: BLE001 -- a graph break under fullgraph: retry once allowing breaks
            if not (self.compile_mode and self.fullgraph):
                raise
            log.warning("fast decode: fullgraph compilation failed (%s: %s); retrying with graph breaks allowed",
                        type(exc).__name__, str(exc)[:300])
            self.fullgraph = False
            self.step = self._compile()
            return self.step(token, position_ids, self.attention_mask)

    def prefill(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the prompt as `generate` does, fill the static cache; (last-position logits, next position_ids)."""
        from transformers import DynamicCache

        input_ids = inputs["input_ids"]
        batch, prompt = input_ids.shape
        if batch != self.batch_size:
            raise ValueError(f"this StaticDecoder is built for batch size {self.batch_size}, got {batch}")
        mask = inputs.get("attention_mask")
        if mask is None:
            mask = torch.ones_like(input_ids)
        # Stale deltas from an earlier batch must not leak into this one; positions are recomputed for this batch.
        self.model.model.rope_deltas = None
        position_ids, deltas = prompt_positions(self.model, {**inputs, "attention_mask": mask})
        # Prefill with a dynamic cache, exactly like generate's first forward (its causal+padding mask spans only
        # the prompt); then copy the keys/values into the static cache through the layers' own update().
        prompt_cache = DynamicCache(config=self.model.config)
        out = self.model(**{**inputs, "attention_mask": mask}, position_ids=position_ids,
                         past_key_values=prompt_cache, use_cache=True, logits_to_keep=1)
        self.model.model.rope_deltas = deltas  # what generate leaves behind, for callers that look at it
        self.cache.reset()
        for static_layer, layer in zip(self.cache.layers, prompt_cache.layers):
            static_layer.update(layer.keys, layer.values)
        del prompt_cache
        self.attention_mask.zero_()
        self.attention_mask[:, :prompt] = mask
        # generate advances every row of position_ids by one per new token from the prompt's last position.
        return out.logits[:, -1], position_ids[..., -1:] + 1

    @torch.inference_mode()
    def decode(self, inputs: dict, max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
               top_k: Optional[int] = None, eos_token_ids: Union[int, Sequence[int], None] = None,
               pad_token_id: int = 0, allowed_fn: Optional[AllowedFn] = None,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """New tokens [batch, n] (n <= max_new_tokens) for left-padded processor `inputs`; pad after each row's EOS.

        `allowed_fn(row, generated_ids) -> allowed next ids` constrains decoding like generate's
        `prefix_allowed_tokens_fn` (one host sync per step).
        """
        max_new_tokens = int(max_new_tokens)
        prompt = inputs["input_ids"].shape[1]
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if prompt + max_new_tokens > self.max_cache_len:
            raise ValueError(f"prompt {prompt} + {max_new_tokens} new tokens exceed the static cache length "
                             f"{self.max_cache_len}; build a StaticDecoder with a longer cache")
        eos = [eos_token_ids] if isinstance(eos_token_ids, int) else list(eos_token_ids or [])
        eos_ids = torch.tensor(eos, dtype=torch.long, device=self.device)
        pad = torch.tensor(int(pad_token_id), dtype=torch.long, device=self.device)

        logits, next_positions = self.prefill(inputs)
        # Positions of every decode step, built once so the loop does no position arithmetic on the fly.
        offsets = torch.arange(max_new_tokens, device=self.device).view(-1, 1, 1, 1)
        positions = (next_positions.unsqueeze(0) + offsets).contiguous()  # [step, 4, batch, 1]

        unfinished = torch.ones(self.batch_size, dtype=torch.bool, device=self.device)
        tokens = torch.full((self.batch_size, max_new_tokens), int(pad_token_id), dtype=torch.long,
                            device=self.device)
        generated: list[list[int]] = [[] for _ in range(self.batch_size)]  # host copy, only for allowed_fn
        self.steps = 0
        n = 0
        for n in range(max_new_tokens):
            if n > 0:
                # The token fed now is written at cache slot prompt + n - 1: open that slot to attention first.
                self.attention_mask[:, prompt + n - 1] = 1
                logits = self._call_step(tokens[:, n - 1:n], positions[n - 1])
                self.steps += 1
            if allowed_fn is not None:
                logits = self._constrain(logits, allowed_fn, generated, unfinished)
            token = sample(logits, temperature, top_p, top_k, generator)
            # Finished rows keep emitting pad, as generate does (and are still fed to the model, harmlessly).
            token = torch.where(unfinished, token, pad)
            tokens[:, n] = token
            if allowed_fn is not None:
                for row, value in enumerate(token.tolist()):
                    generated[row].append(value)
            if eos:
                unfinished &= ~torch.isin(token, eos_ids)
                if (n + 1) % self.sync_every == 0 and not bool(unfinished.any()):
                    break
        return tokens[:, :self._length(tokens[:, :n + 1], eos_ids, pad)]

    def _constrain(self, logits: torch.Tensor, allowed_fn: AllowedFn, generated: list[list[int]],
                   unfinished: torch.Tensor) -> torch.Tensor:
        """Disallowed next tokens set to -inf, as transformers' PrefixConstrainedLogitsProcessor does."""
        logits = logits.float()
        mask = torch.full_like(logits, float("-inf"))
        for row, alive in enumerate(unfinished.tolist()):
            if not alive:  # its token is replaced by pad anyway
                mask[row] = 0
                continue
            allowed = allowed_fn(row, generated[row])
            if len(allowed) == 0:
                raise ValueError(f"allowed_fn returned no allowed token for row {row}")
            if isinstance(allowed, torch.Tensor):
                allowed = allowed.to(logits.device)
            mask[row, allowed] = 0
        constrained = logits + mask
        # Allowed tokens whose logits are all -inf: force them with a score of 0 so the constraint still holds.
        unsatisfiable = constrained.amax(-1, keepdim=True).isneginf()
        return torch.where(unsatisfiable, mask, constrained)

    @staticmethod
    def _length(tokens: torch.Tensor, eos_ids: torch.Tensor, pad: torch.Tensor) -> int:
        """Columns to return: up to the last row's EOS when every row finished, as generate stops there."""
        if eos_ids.numel() == 0:
            return tokens.shape[1]
        is_eos = torch.isin(tokens, eos_ids)
        if not bool(is_eos.any(-1).all()):
            return tokens.shape[1]
        return int(is_eos.int().argmax(-1).max()) + 1  # first EOS of each row; steps after it are pad only
