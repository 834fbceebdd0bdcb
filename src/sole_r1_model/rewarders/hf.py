"""`sole_r1` rewarder: SOLE-R1 (or any Qwen3-VL-family checkpoint) run in-process with transformers.

Same inputs as the official reward server: the composite image, the official system prompt and question, the
checkpoint's chat template, the official image processor settings, and sampling with temperature 1.0,
top_p 0.9, top_k 50, at most 200 new tokens (philipmit/sole-r1-model `reward_server/.../vlm_batch_decode.py`,
`config/default.yaml`). Queries of one `score` call are decoded together in left-padded batches. With
`constrain_format`, a token-level constraint (answer_format.py) makes weak models keep the answer format. With
`decode: static`, a static-KV-cache loop (fast_decode.py, compiled on CUDA) replaces `generate`; greedy output is
the same token for token.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Optional

from sole_r1_model.prompt import build_chat, build_user_text
from sole_r1_model.rewarder import ProgressQuery, ProgressResult
from sole_r1_model.rewarders.answer_format import AnswerFormat
from sole_r1_model.rewarders.config import HFRewarderConfig
from sole_r1_model.rewarders.hf_loading import load_vlm
from sole_r1_model.rewarders.prompted import PromptedRewarder, carried_forward, variant_for

log = logging.getLogger(__name__)

# generate() arguments that the static decode path (fast_decode.StaticDecoder) honours as well.
STATIC_DECODE_OVERRIDES = {"max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "prefix_allowed_tokens_fn"}


class HFRewarder(PromptedRewarder):
    """Runs a Qwen3-VL-family checkpoint with the real processor, chat template and `generate` (or fast_decode)."""

    name = "sole_r1"

    def __init__(self, config: Optional[HFRewarderConfig] = None,
                 generate_overrides: Optional[dict[str, Any]] = None) -> None:
        """Load the model; `generate_overrides` go to every `generate` call (e.g. constrained decoding).

        With `decode: static` only the overrides in STATIC_DECODE_OVERRIDES are allowed (others raise ValueError).
        """
        import torch

        config = config or HFRewarderConfig()
        unsupported = sorted(set(generate_overrides or {}) - STATIC_DECODE_OVERRIDES)
        if config.decode == "static" and unsupported:
            raise ValueError(f"generate_overrides {unsupported} are not supported with decode: static (supported: "
                             f"{sorted(STATIC_DECODE_OVERRIDES)}); use decode: generate")
        super().__init__(config.variant)
        self.config = config
        self.generate_overrides = dict(generate_overrides or {})
        if config.seed is not None:
            torch.manual_seed(config.seed)
        loaded = load_vlm(config, config.use_official_image_processor, config.image_processor_overrides)
        self.checkpoint, self.processor, self.model, self.device = (loaded.checkpoint, loaded.processor,
                                                                    loaded.model, loaded.device)
        self.tokenizer = self.processor.tokenizer
        self._reset_generation_defaults()
        self.answer_format = self._answer_format() if config.constrain_format else None
        self._static_decoders: dict = {}  # batch size -> fast_decode.StaticDecoder (decode: static)
        log.info("%s rewarder: %s on %s (%s, %s)", self.name, self.checkpoint, self.device, self.model.dtype,
                 config.attn_implementation)

    def _reset_generation_defaults(self) -> None:
        """Keep only eos/pad from the checkpoint's generation_config.json.

        Qwen3-VL-Instruct ships sampling defaults (top_k 20, top_p 0.8, temperature 0.7, ...) that `generate`
        would apply to every field we leave unset; the official server passes explicit vLLM SamplingParams, so
        nothing but temperature / top_p / top_k / max tokens may shape the sampling here either.
        """
        from transformers import GenerationConfig

        loaded = self.model.generation_config
        eos = loaded.eos_token_id if loaded.eos_token_id is not None else self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = loaded.pad_token_id if loaded.pad_token_id is not None else (
                eos[0] if isinstance(eos, (list, tuple)) else eos)
        self.model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad)

    def _answer_format(self) -> AnswerFormat:
        """The format constraint for this tokenizer, ending answers with the checkpoint's first stop token."""
        eos = self.model.generation_config.eos_token_id
        eos = eos[0] if isinstance(eos, (list, tuple)) else eos
        return AnswerFormat(self.tokenizer, eos, self.config.max_think_tokens, self.config.max_new_tokens,
                            device=self.device)

    def prompt_text(self, query: ProgressQuery, variant: Optional[str] = None) -> str:
        """The exact prompt string the model sees (chat template applied, image placeholder unexpanded)."""
        messages = build_chat(build_user_text(query.task, carried_forward(query),
                                              variant_for(query, variant or self.variant)))
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _score_prompted(self, queries: list[ProgressQuery], variant: str,
                        temperature: Optional[float]) -> list[ProgressResult]:
        results: list[Optional[ProgressResult]] = [None] * len(queries)
        prepared = []  # (index, image, prompt text) of the queries that could be prepared
        for index, query in enumerate(queries):
            try:
                image, messages = self.prepare(query, variant)
                text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except ValueError as exc:
                results[index] = self.failed(query, f"cannot build the prompt: {exc}")
                continue
            prepared.append((index, image, text))
        step = self.config.max_batch_size
        for start in range(0, len(prepared), step):
            chunk = prepared[start:start + step]
            for index, result in zip([c[0] for c in chunk], self._generate(chunk, queries, temperature)):
                results[index] = result
        return results

    def _generate(self, chunk: list, queries: list[ProgressQuery],
                  temperature: Optional[float]) -> list[ProgressResult]:
        """One left-padded decode (`generate`, or the static-cache loop) for a chunk of prepared queries."""
        import torch

        begin = time.monotonic()
        try:
            inputs = self.processor(text=[c[2] for c in chunk], images=[c[1] for c in chunk], padding=True,
                                    padding_side="left", return_tensors="pt").to(self.device)
            with torch.inference_mode():
                if self.config.decode == "static":
                    new_tokens = self._decode_static(inputs, temperature)
                else:
                    kwargs = self.generation_kwargs(temperature)
                    if self.answer_format is not None:  # an explicit generate_overrides callback takes precedence
                        kwargs.setdefault("prefix_allowed_tokens_fn", self.answer_format.prefix_allowed_tokens_fn(
                            inputs["input_ids"].shape[1]))
                    new_tokens = self.model.generate(**inputs, **kwargs)[:, inputs["input_ids"].shape[1]:]
            completions = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        except Exception as exc:  # noqa: BLE001 -- e.g. CUDA OOM: answer invalid, keep the control loop alive
            log.exception("%s rewarder: generate failed for %d queries", self.name, len(chunk))
            latency = time.monotonic() - begin
            return [self.failed(queries[c[0]], f"generate failed: {type(exc).__name__}: {exc}", latency)
                    for c in chunk]
        latency = time.monotonic() - begin  # the batch's wall time, shared by its queries
        return [self.parse(queries[c[0]], text, latency) for c, text in zip(chunk, completions)]

    def _decode_static(self, inputs, temperature: Optional[float]):
        """New tokens of one batch from the static-KV-cache decoder, with generate's sampling, stops and format."""
        import torch

        kwargs = self.generation_kwargs(temperature)
        sampling = {"temperature": kwargs.get("temperature", 1.0), "top_p": kwargs.get("top_p", 1.0),
                    "top_k": kwargs.get("top_k")} if kwargs.get("do_sample") else {"temperature": 0.0}
        input_ids = inputs["input_ids"]
        allowed_fn = None
        if "prefix_allowed_tokens_fn" in kwargs:  # an override, written for generate's (batch, full row ids) calls
            prefix_fn = kwargs["prefix_allowed_tokens_fn"]

            def allowed_fn(row: int, generated: list[int]):
                return prefix_fn(row, torch.cat([input_ids[row], input_ids.new_tensor(generated)]))
        elif self.answer_format is not None:
            answer_format = self.answer_format

            def allowed_fn(row: int, generated: list[int]):
                return answer_format.allowed(generated)
        generation = self.model.generation_config
        decoder = self._static_decoder(input_ids.shape[0], input_ids.shape[1], kwargs["max_new_tokens"])
        return decoder.decode(inputs, kwargs["max_new_tokens"], eos_token_ids=generation.eos_token_id,
                              pad_token_id=generation.pad_token_id, allowed_fn=allowed_fn, **sampling)

    def _static_decoder(self, batch_size: int, prompt_len: int, max_new_tokens: int):
        """The cached StaticDecoder of this batch size, rebuilt when a batch needs a longer cache.

        Cache lengths are the prompt length rounded up to a multiple of 256, plus max_new_tokens, so prompts of
        slightly different lengths reuse one decoder (and one compiled graph) instead of recompiling per length.
        """
        from sole_r1_model.rewarders.fast_decode import StaticDecoder

        decoder = self._static_decoders.get(batch_size)
        if decoder is None or decoder.max_cache_len < prompt_len + max_new_tokens:
            length = -(-prompt_len // 256) * 256 + max_new_tokens
            mode = self.config.compile_decode
            if mode == "auto":
                mode = "reduce-overhead" if self.device.startswith("cuda") else None
            elif mode == "off":
                mode = None
            self._static_decoders.pop(batch_size, None)  # the old cache goes before the longer one is filled
            decoder = self._static_decoders[batch_size] = StaticDecoder(self.model, batch_size, length, mode)
            log.info("%s rewarder: static decoder for batch %d, cache %d tokens, compile %s",
                     self.name, batch_size, length, mode or "off")
        return decoder

    def generation_kwargs(self, temperature: Optional[float] = None) -> dict[str, Any]:
        """Arguments of `generate`: the configured sampling (or greedy at temperature 0), then the overrides."""
        temperature = self.config.temperature if temperature is None else temperature
        sampling = {"do_sample": True, "temperature": temperature, "top_p": self.config.top_p,
                    "top_k": self.config.top_k or 0} if temperature > 0 else {"do_sample": False}
        return {"max_new_tokens": self.config.max_new_tokens, **sampling, **self.generate_overrides}

    def close(self) -> None:
        """Drop the model (and the static decoders' caches) so their memory can be freed."""
        self.model = None
        self._static_decoders = {}
