"""`zmq` rewarder: a client of the official SOLE-R1 ZeroMQ protocol, for `sole-r1 serve` or the official server.

Wire format (sole_r1_model/serve_official.py, philipmit/sole-r1-model `reward_server/`): REQ/REP, every message
`lz4.frame.compress(pickle.dumps(obj))`; the request `{"type": "call_interface", "interface": service, "payload":
{task, front_images, wrist_images, temperature, from_zero, external_only}}`, the reply `{"success": True, "data":
{"valid_answers", "text_outputs", "text_inputs"}}` or `{"success": False, "message": ...}`.

That protocol scores whole episodes and feeds the model's own previous answer back itself; it has no field for
the caller's previous progress. So each query is sent as a short episode:
- the first query of an episode (previous frame = first frame): [first, current] -> one model call, exactly the
  step-1 prompt;
- later queries: [first, previous, current] -> two model calls; the second is exactly (first | previous | current),
  with the server's answer for `previous` as the previous progress;
- `from_zero: true`: [first, current] in the from_zero layout, one call per query.
Queries of one batch with the same task go in one request (one episode each). Replies are read with the
restricted unpickler; a timeout, a refused request or an unreadable answer is an invalid result with the previous
progress carried forward, and after a timeout the socket is rebuilt (a REQ socket cannot send before its reply).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

import numpy as np

from sole_r1_model import safe_pickle
from sole_r1_model.parsing import parse_answer
from sole_r1_model.rewarder import ProgressQuery, ProgressResult, Rewarder
from sole_r1_model.rewarders.config import ZMQRewarderConfig

log = logging.getLogger(__name__)


class RequestFailed(Exception):
    """No usable reply: timeout, transport error, an error reply or a malformed one."""


def episode_frames(query: ProgressQuery, from_zero: bool) -> tuple[list[np.ndarray], Optional[list[np.ndarray]]]:
    """The (front, wrist) episode that makes the server's last step answer `query` (see the module docstring)."""
    def frames(view: tuple) -> list[np.ndarray]:
        first, previous, current = view
        short = from_zero or query.query_index <= 1 or previous is first or np.array_equal(previous, first)
        return [first, current] if short else [first, previous, current]

    return frames(query.external), (None if query.wrist is None else frames(query.wrist))


class ZMQRewarder(Rewarder):
    """Asks an official-protocol server for progress; one request per task and batch."""

    name = "zmq"

    def __init__(self, config: Optional[ZMQRewarderConfig] = None) -> None:
        import zmq

        self.config = config or ZMQRewarderConfig()
        self._zmq = zmq
        self._context = zmq.Context()
        self._socket = None
        self._lock = threading.Lock()     # one REQ socket: one request in flight

    # ---- transport ------------------------------------------------------------------------------------------
    def _connect(self):
        if self._socket is None:
            socket = self._context.socket(self._zmq.REQ)
            socket.setsockopt(self._zmq.LINGER, 0)
            socket.connect(self.config.endpoint)
            self._socket = socket
        return self._socket

    def _drop_socket(self) -> None:
        if self._socket is not None:
            self._socket.close(0)
            self._socket = None

    def request(self, message: dict) -> Any:
        """Send one envelope and return the decoded reply; RequestFailed on timeout or an unreadable reply."""
        with self._lock:
            socket = self._connect()
            try:
                socket.send(safe_pickle.dumps(message))
                if not socket.poll(int(self.config.timeout_s * 1000)):
                    self._drop_socket()
                    raise RequestFailed(f"no reply from {self.config.endpoint} within {self.config.timeout_s:g} s "
                                        "(is the reward server running and reachable?)")
                data = socket.recv()
            except self._zmq.ZMQError as exc:
                self._drop_socket()
                raise RequestFailed(f"ZeroMQ error talking to {self.config.endpoint}: {exc}") from exc
        try:
            return safe_pickle.loads(data, self.config.max_reply_bytes)
        except safe_pickle.UnsafeMessage as exc:
            raise RequestFailed(f"unreadable reply from {self.config.endpoint}: {exc}") from exc

    def interfaces(self) -> set:
        """The interface names the server offers (`list_interfaces`)."""
        reply = self.request({"type": "list_interfaces"})
        return set(reply.get("interfaces", [])) if isinstance(reply, dict) else set()

    # ---- scoring --------------------------------------------------------------------------------------------
    def _score(self, queries: list[ProgressQuery]) -> list[ProgressResult]:
        results: list[Optional[ProgressResult]] = [None] * len(queries)
        groups: dict[tuple, list[int]] = {}
        for index, query in enumerate(queries):
            groups.setdefault((query.task, query.wrist is None), []).append(index)
        for indices in groups.values():
            start = time.monotonic()
            group = [queries[i] for i in indices]
            try:
                data = self._call(group)
                answers = [self._result(q, data, e) for e, q in enumerate(group)]
            except RequestFailed as exc:
                log.warning("zmq rewarder: %s", exc)
                answers = [_failed(q, str(exc)) for q in group]
            latency = time.monotonic() - start
            for i, result in zip(indices, answers):
                result.latency = latency
                results[i] = result
        return results

    def _call(self, group: list[ProgressQuery]) -> dict:
        episodes = [episode_frames(q, self.config.from_zero) for q in group]
        external_only = group[0].wrist is None
        payload = {"task": group[0].task, "front_images": [front for front, _ in episodes],
                   # The official server requires wrist_images even with external_only (its client sends the
                   # front frames again); ours ignores them then.
                   "wrist_images": [front if wrist is None else wrist for front, wrist in episodes],
                   "temperature": float(self.config.temperature), "from_zero": self.config.from_zero,
                   "external_only": external_only}
        reply = self.request({"type": "call_interface", "interface": self.config.service, "payload": payload})
        if not isinstance(reply, dict) or not reply.get("success"):
            message = reply.get("message", "") if isinstance(reply, dict) else f"a {type(reply).__name__}"
            raise RequestFailed(f"server refused the request: {str(message)[:500]}")
        data = reply.get("data")
        if not isinstance(data, dict) or len(data.get("valid_answers") or []) != len(group) \
                or len(data.get("text_outputs") or []) != len(group):
            raise RequestFailed("malformed reply: expected valid_answers and text_outputs for every episode")
        return data

    def _result(self, query: ProgressQuery, data: dict, episode: int) -> ProgressResult:
        outputs = list(data["text_outputs"][episode])
        text = outputs[-1] if outputs and isinstance(outputs[-1], str) else ""
        parsed = parse_answer(text, query.previous_progress)
        return ProgressResult(progress=parsed.progress, reasoning=parsed.reasoning, raw_text=text,
                              valid=parsed.valid, error=parsed.error)

    def close(self) -> None:
        """Close the socket and the ZeroMQ context."""
        with self._lock:
            self._drop_socket()
        self._context.term()


def _failed(query: ProgressQuery, error: str) -> ProgressResult:
    """An invalid result carrying the previous progress forward."""
    return ProgressResult(progress=parse_answer("", query.previous_progress).progress, valid=False, error=error)
