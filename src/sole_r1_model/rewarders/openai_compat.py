"""`openai` rewarder: the SOLE-R1 prompt (or the paper's GPT-5 baseline prompt) sent to any OpenAI-compatible
/v1/chat/completions endpoint.

Serve the released checkpoint with vLLM or SGLang (`vllm serve Philip-MIT/SOLE-R1-8B`) and point `base_url` at
it, or use a hosted API. Only the standard library is used (urllib), so the backend adds no dependency. Every
failure -- timeout, refused connection, HTTP error after the retries, malformed JSON -- becomes an invalid
result with the previous progress carried forward, never an exception in the caller's loop.
"""
from __future__ import annotations

import base64
import io
import json
import logging
import os
from typing import Optional

import numpy as np
from PIL import Image

from sole_r1_model.rewarder import ProgressQuery
from sole_r1_model.rewarders.baseline_prompt import (USER_PROMPT_TEMPLATE_GPT, baseline_frames, baseline_question,
                                                     jpeg_data_url, normalize_api_text)
from sole_r1_model.rewarders.config import OpenAIRewarderConfig
from sole_r1_model.rewarders.remote import RemoteRewarder, RequestFailed, RetryPolicy, call_with_retries, http_post

log = logging.getLogger(__name__)


def png_data_url(image: np.ndarray) -> str:
    """Encode an RGB uint8 image as a `data:image/png;base64,...` URL (lossless, unlike the JPEG of some clients)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def to_openai_messages(messages: list[dict], image: np.ndarray) -> list[dict]:
    """Replace the `{"type": "image"}` parts of HF chat messages by an `image_url` part holding the PNG."""
    url = png_data_url(image)
    converted = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [{"type": "image_url", "image_url": {"url": url}} if part.get("type") == "image" else part
                       for part in content]
        converted.append({"role": message["role"], "content": content})
    return converted


def baseline_messages(query: ProgressQuery) -> list[dict]:
    """The GPT-5 baseline's chat: one user turn of question, previous and current external frame (JPEG)."""
    previous, current = baseline_frames(query)
    return [{"role": "user", "content": [
        {"type": "text", "text": baseline_question(USER_PROMPT_TEMPLATE_GPT, query)},
        {"type": "image_url", "image_url": {"url": jpeg_data_url(previous)}},
        {"type": "image_url", "image_url": {"url": jpeg_data_url(current)}},
    ]}]


class OpenAICompatRewarder(RemoteRewarder):
    """Scores queries through an OpenAI-compatible chat completions API, one request per query."""

    name = "openai"

    def __init__(self, config: Optional[OpenAIRewarderConfig] = None) -> None:
        config = config or OpenAIRewarderConfig()
        super().__init__(config.variant, config.max_concurrency)
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self._retry = RetryPolicy.of(config)
        self._api_key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        if config.api_key_env and not self._api_key:
            log.info("openai rewarder: $%s is not set; sending requests without an Authorization header "
                     "(fine for a local vLLM server; export the key for hosted APIs)", config.api_key_env)

    def complete(self, query: ProgressQuery, variant: str, temperature: Optional[float]) -> str:
        """Ask the endpoint about one query; the completion text (RequestFailed/ValueError when there is none)."""
        if self.config.prompt == "official_baseline":
            body = self.baseline_body(baseline_messages(query), temperature)
        else:
            image, messages = self.prepare(query, variant)
            body = self.request_body(to_openai_messages(messages, image), temperature)
        data = json.dumps(body).encode("utf-8")
        text = call_with_retries(lambda: _completion_text(http_post(self.url, data, self._headers(),
                                                                    self.config.timeout_s)),
                                 self._retry, "openai rewarder")
        return normalize_api_text(text) if self.config.prompt == "official_baseline" else text

    def request_body(self, messages: list[dict], temperature: Optional[float]) -> dict:
        """The JSON body of one chat completion request with the SOLE-R1 prompt and the sampling settings."""
        sampling = self.config
        body = {"model": sampling.model, "messages": messages,
                "temperature": sampling.temperature if temperature is None else temperature,
                "top_p": sampling.top_p, sampling.max_tokens_field: sampling.max_new_tokens}
        if sampling.top_k is not None:
            body["top_k"] = sampling.top_k  # vLLM/SGLang extension; set top_k: null for APIs that reject it
        body.update(sampling.extra_body)
        return body

    def baseline_body(self, messages: list[dict], temperature: Optional[float]) -> dict:
        """The GPT-5 baseline request: model and messages only (reasoning models reject sampling settings)."""
        body = {"model": self.config.model, "messages": messages}
        if temperature is not None:  # only when a caller asks for it in this call (the official protocol may)
            body["temperature"] = temperature
        body.update(self.config.extra_body)
        return body

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers


def _completion_text(payload: bytes) -> str:
    """The assistant text of a chat completion response (RequestFailed if the JSON has none)."""
    try:
        content = json.loads(payload)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise RequestFailed(f"response is not a chat completion: {payload[:200]!r}") from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise RequestFailed(f"chat completion content is {type(content).__name__}, not text")
    return content
