"""`gemini` rewarder: Google's Gemini API through google-genai, with the paper's Gemini-3-Pro baseline prompt
(default) or the SOLE-R1 prompt.

The client is the real `google.genai.Client`; `base_url` points it elsewhere (a proxy, or the local stub of the
tests). Retries are ours (`remote.call_with_retries`, the SDK's own are off) so that every backend retries the
same statuses with the same back-off. Every failure -- timeout, HTTP error after the retries, a blocked or
empty answer, an unparsable one -- is an invalid result with the previous progress carried forward.
"""
from __future__ import annotations

import importlib
import os
from typing import Any, Optional

from PIL import Image

from sole_r1_model.rewarder import ProgressQuery
from sole_r1_model.rewarders.baseline_prompt import (SYSTEM_PROMPT_GEMINI, USER_PROMPT_TEMPLATE_GEMINI,
                                                     baseline_frames, baseline_question, normalize_api_text)
from sole_r1_model.rewarders.config import GeminiRewarderConfig
from sole_r1_model.rewarders.remote import (RETRY_STATUS, RemoteRewarder, RequestFailed, RetryPolicy,
                                            call_with_retries)

KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")  # google-genai's own order of preference


def gemini_api_key(api_key_env: Optional[str]) -> str:
    """The API key from `api_key_env`, else GEMINI_API_KEY / GOOGLE_API_KEY; ValueError saying what to export."""
    names = (api_key_env,) if api_key_env else KEY_VARIABLES
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    raise ValueError(f"gemini rewarder: no API key: export {' or '.join(names)} (a key from Google AI Studio), "
                     "or set api_key_env to the variable that holds it")


def _http_errors() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """(timeout, transport) exception classes of the HTTP libraries google-genai may use (httpx or its fork)."""
    timeouts, transport = [], []
    for name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transport.append(module.TransportError)
    return tuple(timeouts), tuple(transport)


class GeminiRewarder(RemoteRewarder):
    """Scores queries with a Gemini model through google-genai, one generateContent request per query."""

    name = "gemini"

    def __init__(self, config: Optional[GeminiRewarderConfig] = None) -> None:
        config = config or GeminiRewarderConfig()
        api_key = gemini_api_key(config.api_key_env)
        try:
            from google import genai
            from google.genai import errors, types
        except ImportError as exc:
            raise ImportError("the gemini rewarder needs google-genai: `pip install google-genai` (it is in "
                              f"requirements/base.in, so `make setup` installs it) ({exc})") from exc
        super().__init__(config.variant, config.max_concurrency)
        self.config = config
        self._retry = RetryPolicy.of(config)
        self._types, self._api_error = types, errors.APIError
        self._timeouts, self._transport_errors = _http_errors()
        # retry_options stays unset, so the SDK makes one attempt and our retry loop decides about the next.
        options = types.HttpOptions(base_url=config.base_url, timeout=max(1, round(config.timeout_s * 1000)))
        self._client = genai.Client(api_key=api_key, vertexai=False, http_options=options)

    def complete(self, query: ProgressQuery, variant: str, temperature: Optional[float]) -> str:
        """Ask Gemini about one query; the answer text (RequestFailed/ValueError when there is none)."""
        contents, system = self.contents(query, variant)
        settings = self.generation_config(system, temperature)
        response = call_with_retries(lambda: self._generate(contents, settings), self._retry, "gemini rewarder")
        text = answer_text(response)
        return normalize_api_text(text) if self.config.prompt == "official_baseline" else text

    def contents(self, query: ProgressQuery, variant: str) -> tuple[list, str]:
        """(user parts, system instruction) for one query under the configured prompt."""
        if self.config.prompt == "official_baseline":
            previous, current = baseline_frames(query)
            question = baseline_question(USER_PROMPT_TEMPLATE_GEMINI, query)
            return [question, Image.fromarray(previous), Image.fromarray(current)], SYSTEM_PROMPT_GEMINI
        image, (system, user) = self.prepare(query, variant)
        parts = [Image.fromarray(image) if part["type"] == "image" else part["text"] for part in user["content"]]
        return parts, system["content"]

    def generation_config(self, system: str, temperature: Optional[float]) -> dict[str, Any]:
        """The generateContent config: system instruction, sampling, thinking (null settings are not sent)."""
        c = self.config
        settings: dict[str, Any] = {"system_instruction": system, "max_output_tokens": c.max_output_tokens,
                                    "temperature": c.temperature if temperature is None else temperature}
        if c.top_k is not None:
            settings["top_k"] = c.top_k
        if c.top_p is not None:
            settings["top_p"] = c.top_p
        if c.thinking_level is not None:
            settings["thinking_config"] = {"include_thoughts": c.include_thoughts,
                                           "thinking_level": self._types.ThinkingLevel(c.thinking_level.upper())}
        return settings

    def _generate(self, contents: list, settings: dict[str, Any]):
        """One generateContent call; SDK and transport errors become RequestFailed (retryable where it may help)."""
        try:
            return self._client.models.generate_content(model=self.config.model, contents=contents, config=settings)
        except self._api_error as exc:
            raise RequestFailed(f"HTTP {exc.code} from Gemini ({self.config.model}): {exc.message}",
                                exc.code in RETRY_STATUS) from None
        except self._timeouts:
            raise RequestFailed(f"timeout after {self.config.timeout_s:g} s waiting for Gemini", True) from None
        except self._transport_errors as exc:
            raise RequestFailed(f"cannot reach Gemini ({type(exc).__name__}: {exc})", True) from None
        except ValueError as exc:  # a 200 whose body is not a GenerateContentResponse (JSON or schema)
            raise RequestFailed(f"malformed Gemini response ({type(exc).__name__}: {exc})") from None

    def close(self) -> None:
        """Stop the request threads and the HTTP client."""
        super().close()
        close = getattr(self._client, "close", None)
        if callable(close):
            close()


def answer_text(response) -> str:
    """The answer of a GenerateContentResponse: its last non-thought text part, as the baseline server reads it."""
    candidates = getattr(response, "candidates", None) or []
    if not candidates:
        feedback = getattr(response, "prompt_feedback", None)
        raise RequestFailed(f"Gemini returned no candidate (prompt feedback: {feedback})")
    content = candidates[0].content
    texts = [part.text for part in (content.parts if content and content.parts else [])
             if part.text and not part.thought]
    if not texts:
        raise RequestFailed(f"Gemini returned no answer text (finish reason: {candidates[0].finish_reason})")
    return texts[-1]
