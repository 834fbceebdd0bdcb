"""`openai` rewarder: the SOLE-R1 prompt sent to any OpenAI-compatible /v1/chat/completions endpoint.

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
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np
from PIL import Image

from sole_r1_model.rewarder import ProgressQuery, ProgressResult
from sole_r1_model.rewarders.config import OpenAIRewarderConfig
from sole_r1_model.rewarders.prompted import PromptedRewarder

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class RequestFailed(Exception):
    """An HTTP exchange that produced no completion (after retries, or not worth retrying)."""


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


class OpenAICompatRewarder(PromptedRewarder):
    """Scores queries through an OpenAI-compatible chat completions API, one request per query."""

    name = "openai"

    def __init__(self, config: Optional[OpenAIRewarderConfig] = None) -> None:
        config = config or OpenAIRewarderConfig()
        super().__init__(config.variant)
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self._api_key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        if config.api_key_env and not self._api_key:
            log.info("openai rewarder: $%s is not set; sending requests without an Authorization header "
                     "(fine for a local vLLM server; export the key for hosted APIs)", config.api_key_env)
        self._pool = ThreadPoolExecutor(max_workers=config.max_concurrency, thread_name_prefix="openai-rewarder")

    def _score_prompted(self, queries: list[ProgressQuery], variant: str,
                        temperature: Optional[float]) -> list[ProgressResult]:
        futures = [self._pool.submit(self._score_one, query, variant, temperature) for query in queries]
        return [future.result() for future in futures]

    def _score_one(self, query: ProgressQuery, variant: str, temperature: Optional[float]) -> ProgressResult:
        """One query end to end; never raises."""
        start = time.monotonic()
        try:
            image, messages = self.prepare(query, variant)
            body = self.request_body(to_openai_messages(messages, image), temperature)
            text = self._post_with_retries(body)
        except (ValueError, RequestFailed) as exc:
            return self.failed(query, str(exc), time.monotonic() - start)
        return self.parse(query, text, time.monotonic() - start)

    def request_body(self, messages: list[dict], temperature: Optional[float]) -> dict:
        """The JSON body of one chat completion request."""
        sampling = self.config
        body = {"model": sampling.model, "messages": messages,
                "temperature": sampling.temperature if temperature is None else temperature,
                "top_p": sampling.top_p, sampling.max_tokens_field: sampling.max_new_tokens}
        if sampling.top_k is not None:
            body["top_k"] = sampling.top_k  # vLLM/SGLang extension; set top_k: null for APIs that reject it
        body.update(sampling.extra_body)
        return body

    def _post_with_retries(self, body: dict) -> str:
        """POST the body, retrying transient failures with exponential back-off; return the completion text."""
        data = json.dumps(body).encode("utf-8")
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            try:
                return self._post(data)
            except RequestFailed as exc:
                retryable = getattr(exc, "retryable", False)
                if not retryable or attempt == attempts - 1:
                    raise RequestFailed(f"{exc} (attempt {attempt + 1}/{attempts})") from None
                delay = min(self.config.backoff_max_s, self.config.backoff_s * 2 ** attempt)
                log.warning("openai rewarder: %s; retrying in %.2f s (attempt %d/%d)", exc, delay, attempt + 1,
                            attempts)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _post(self, data: bytes) -> str:
        """One HTTP attempt; raises RequestFailed (with .retryable) on any failure."""
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace") if exc.fp else ""
            raise _failure(f"HTTP {exc.code} from {self.url}: {detail}", exc.code in _RETRY_STATUS) from None
        except (socket.timeout, TimeoutError):
            raise _failure(f"timeout after {self.config.timeout_s:g} s waiting for {self.url}", True) from None
        except urllib.error.URLError as exc:
            timed_out = isinstance(exc.reason, (socket.timeout, TimeoutError))
            reason = f"timeout after {self.config.timeout_s:g} s" if timed_out else f"cannot reach it ({exc.reason})"
            raise _failure(f"{reason}: {self.url}", True) from None
        except OSError as exc:  # connection reset mid-response and the like
            raise _failure(f"connection error with {self.url}: {exc}", True) from None
        return _completion_text(payload)

    def close(self) -> None:
        """Stop the request threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _failure(message: str, retryable: bool) -> RequestFailed:
    error = RequestFailed(message)
    error.retryable = retryable
    return error


def _completion_text(payload: bytes) -> str:
    """The assistant text of a chat completion response (RequestFailed if the JSON has none)."""
    try:
        content = json.loads(payload)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise _failure(f"response is not a chat completion: {payload[:200]!r}", False) from None
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise _failure(f"chat completion content is {type(content).__name__}, not text", False)
    return content
