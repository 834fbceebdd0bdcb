"""What the rewarders that call a remote service share: retries with back-off, one HTTP POST, a request pool.

`call_with_retries` repeats an attempt that raised a retryable `RequestFailed` (429/5xx, timeouts, refused
connections) with exponential back-off; `http_post` is one urllib attempt that raises `RequestFailed` for every
failure; `RemoteRewarder` answers a batch one request per query, `max_concurrency` at a time, turning every
failure into an invalid result with the previous progress carried forward.
"""
from __future__ import annotations

import abc
import dataclasses
import logging
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, TypeVar

from sole_r1_model.rewarder import ProgressQuery, ProgressResult
from sole_r1_model.rewarders.prompted import PromptedRewarder

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})  # worth another attempt; other codes are not
T = TypeVar("T")


class RequestFailed(Exception):
    """A remote exchange that produced no answer; `retryable` says whether another attempt may succeed."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to repeat a failed request."""

    max_retries: int = 3       # extra attempts after the first
    backoff_s: float = 0.5     # first delay; doubles each retry
    backoff_max_s: float = 8.0

    @classmethod
    def of(cls, config) -> "RetryPolicy":
        """The policy of a backend config that has max_retries, backoff_s and backoff_max_s fields."""
        return cls(config.max_retries, config.backoff_s, config.backoff_max_s)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (0-based)."""
        return min(self.backoff_max_s, self.backoff_s * 2 ** attempt)


def call_with_retries(attempt: Callable[[], T], policy: RetryPolicy, label: str) -> T:
    """Return `attempt()`, repeating it after retryable RequestFailed; the last failure names the attempt count."""
    attempts = policy.max_retries + 1
    for number in range(attempts):
        try:
            return attempt()
        except RequestFailed as exc:
            if not exc.retryable or number == attempts - 1:
                raise RequestFailed(f"{exc} (attempt {number + 1}/{attempts})", exc.retryable) from None
            delay = policy.delay(number)
            log.warning("%s: %s; retrying in %.2f s (attempt %d/%d)", label, exc, delay, number + 1, attempts)
            time.sleep(delay)
    raise AssertionError("unreachable")


def http_post(url: str, data: bytes, headers: dict[str, str], timeout_s: float) -> bytes:
    """One POST; the response body, or RequestFailed (retryable for 429/5xx, timeouts and connection errors)."""
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace") if exc.fp else ""
        raise RequestFailed(f"HTTP {exc.code} from {url}: {detail}", exc.code in RETRY_STATUS) from None
    except (socket.timeout, TimeoutError):
        raise RequestFailed(f"timeout after {timeout_s:g} s waiting for {url}", True) from None
    except urllib.error.URLError as exc:
        timed_out = isinstance(exc.reason, (socket.timeout, TimeoutError))
        reason = f"timeout after {timeout_s:g} s" if timed_out else f"cannot reach it ({exc.reason})"
        raise RequestFailed(f"{reason}: {url}", True) from None
    except OSError as exc:  # connection reset mid-response and the like
        raise RequestFailed(f"connection error with {url}: {exc}", True) from None


class RemoteRewarder(PromptedRewarder):
    """A PromptedRewarder asking a remote API, one request per query, `max_concurrency` requests at a time."""

    def __init__(self, variant: str, max_concurrency: int) -> None:
        super().__init__(variant)
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=f"{self.name}-rewarder")

    @abc.abstractmethod
    def complete(self, query: ProgressQuery, variant: str, temperature: Optional[float]) -> str:
        """The model's answer text for one query; raises RequestFailed or ValueError when there is none."""

    def _score_prompted(self, queries: list[ProgressQuery], variant: str,
                        temperature: Optional[float]) -> list[ProgressResult]:
        futures = [self._pool.submit(self._score_one, query, variant, temperature) for query in queries]
        return [future.result() for future in futures]

    def _score_one(self, query: ProgressQuery, variant: str, temperature: Optional[float]) -> ProgressResult:
        """One query end to end; never raises."""
        start = time.monotonic()
        try:
            text = self.complete(query, variant, temperature)
        except (ValueError, RequestFailed) as exc:
            return self.failed(query, str(exc), time.monotonic() - start)
        except Exception as exc:  # noqa: BLE001 -- an SDK surprise must not stop the caller's reward loop
            log.warning("%s: unexpected %s while asking the model", self.name, type(exc).__name__, exc_info=True)
            return self.failed(query, f"{type(exc).__name__}: {exc}", time.monotonic() - start)
        return self.parse(query, text, time.monotonic() - start)

    def close(self) -> None:
        """Stop the request threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
