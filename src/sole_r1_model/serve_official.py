"""A reward server that speaks the official SOLE-R1 ZeroMQ protocol, backed by any of our rewarders.

Wire format (philipmit/sole-r1-model `reward_server/`, agentlace `zmq_wrapper/req_rep.py`): ZeroMQ REQ/REP,
each message `lz4.frame.compress(pickle.dumps(obj))`. Requests are envelopes
`{"type": "list_interfaces"}` -> `{"interfaces": [...]}` and
`{"type": "call_interface", "interface": "rewards", "payload": {...}}` with payload keys `task`,
`front_images`, `wrist_images` (lists or arrays of episodes, each a list or array of frames: HWC/CHW uint8 or
float arrays, PNG/JPEG bytes, uint8 arrays of PNG/JPEG bytes, or numpy object arrays of PNG/JPEG bytes, as the
official `decode_and_validate_image` takes them), optional `temperature`, `from_zero`, `external_only`. The reply is
`{"success": True, "data": {"valid_answers": [int32 array per episode, 0 first], "text_outputs": [[str]],
"text_inputs": [[str]]}}` or `{"success": False, "message": str}`.

Differences on purpose: requests are read with a restricted unpickler (`safe_pickle`; torch tensors, which the
official server also takes, are refused: unpickling one runs torch code), compressed frames are decoded only as
PNG, JPEG or WebP within a pixel and a per-request budget, the server binds to 127.0.0.1 unless told otherwise,
and the previous progress fed back is the parsed answer with failures carried forward (the official decoder
writes the raw, possibly empty, answer string).
"""
from __future__ import annotations

import io
import logging
import threading
from typing import Any, Optional

import numpy as np

from sole_r1_model import safe_pickle
from sole_r1_model.rewarder import ProgressQuery, Rewarder
from sole_r1_model.rewarders.prompted import PromptedRewarder

log = logging.getLogger(__name__)

DEFAULT_PORT = 8001
DEFAULT_SERVICE = "rewards"
MAX_FRAME_PIXELS = 8192 * 8192  # one decoded frame; the model sees 384x384 tiles, so this is generous
DEFAULT_MAX_FRAMES = 20_000     # frames of one request: each is decoded, then scored by the model
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP")  # what PIL may decode; never its many other plugins (EPS runs Ghostscript)


class BadRequest(ValueError):
    """A payload the server cannot score; its message goes back to the client."""


def decode_frame(frame: Any, where: str, max_bytes: Optional[int] = None) -> np.ndarray:
    """One payload frame as RGB uint8 HxWx3 (accepts HWC/CHW arrays, floats in [0, 1], PNG/JPEG bytes).

    `max_bytes` refuses, before decoding, a frame whose RGB image would be larger.
    """
    if isinstance(frame, np.ndarray) and frame.dtype.hasobject:
        raise BadRequest(f"{where}: an object array is not one image; send each image's PNG/JPEG bytes as one "
                         "element of the episode (a list or object array of bytes)")
    if isinstance(frame, (bytes, bytearray)) or (isinstance(frame, np.ndarray) and frame.ndim == 1):
        data = bytes(frame) if not isinstance(frame, np.ndarray) else frame.tobytes()
        frame = _decode_compressed(data, where, max_bytes)
    if not isinstance(frame, np.ndarray):
        raise BadRequest(f"{where}: expected an image array or PNG/JPEG bytes, got {type(frame).__name__}")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim == 3 and frame.shape[0] in (1, 3, 4) and frame.shape[2] not in (1, 3, 4):
        frame = np.moveaxis(frame, 0, -1)  # CHW -> HWC
    if frame.ndim != 3 or frame.shape[2] not in (1, 3, 4) or min(frame.shape[:2]) < 1:
        raise BadRequest(f"{where}: expected an HxWx3 image, got shape {frame.shape}")
    _check_fits(frame.shape[1], frame.shape[0], max_bytes, where)
    if frame.dtype != np.uint8:
        real = np.issubdtype(frame.dtype, np.integer) or np.issubdtype(frame.dtype, np.floating)
        if not real or not np.all(np.isfinite(frame)):
            raise BadRequest(f"{where}: image values must be finite real numbers, got dtype {frame.dtype}")
        scale = 255.0 if frame.size and frame.max() <= 1.0 else 1.0  # floats in [0, 1], as the official server
        frame = np.clip(frame * scale, 0, 255).astype(np.uint8)
    if frame.shape[2] == 1:
        frame = np.repeat(frame, 3, axis=2)
    return np.ascontiguousarray(frame[:, :, :3])


def _check_fits(width: int, height: int, max_bytes: Optional[int], where: str) -> None:
    """Refuse an image over MAX_FRAME_PIXELS or whose RGB pixels would take more than max_bytes (None: no limit)."""
    if width * height > MAX_FRAME_PIXELS:
        raise BadRequest(f"{where}: a {width}x{height} image has more than {MAX_FRAME_PIXELS} pixels; "
                         "send frames of at most 8192x8192 (the model sees 384x384 tiles)")
    if max_bytes is not None and width * height * 3 > max_bytes:
        raise BadRequest(f"{where}: a {width}x{height} image does not fit the {max_bytes} bytes left for "
                         "this request's frames; send fewer or smaller frames per request")


def _decode_compressed(data: bytes, where: str, max_bytes: Optional[int]) -> np.ndarray:
    """PNG/JPEG/WebP bytes as RGB, refused from the header when too large; truncated data is an error."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            _check_fits(image.width, image.height, max_bytes, where)  # from the header: before decoding
            return np.asarray(image.convert("RGB"))
    except BadRequest:
        raise
    except Exception as exc:  # noqa: BLE001 -- PIL raises many types for bad bytes
        raise BadRequest(f"{where}: bytes are not a readable PNG/JPEG/WebP image ({exc})") from None


def _episodes(payload: dict, key: str, max_bytes: int, max_frames: int) -> list[list[np.ndarray]]:
    """Decode `payload[key]`: a list of episodes, each a list (or T-leading array) of frames, within the budgets."""
    value = payload.get(key)
    if value is None:
        raise BadRequest(f"No '{key}' in payload.")
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise BadRequest(f"'{key}' must be a list of episodes (each a list of frames)")
    episodes = []
    for e, episode in enumerate(value):
        if not isinstance(episode, (list, tuple, np.ndarray)):
            raise BadRequest(f"{key}[{e}] must be a list of frames, got {type(episode).__name__}")
        frames = []
        for t, frame in enumerate(episode):
            if max_frames <= 0:  # a shared reference costs two message bytes, its decoding far more: count them
                raise BadRequest(f"{key}[{e}][{t}]: over the frame limit of one request; split the episodes over "
                                 "several requests")
            max_frames -= 1
            frames.append(decode_frame(frame, f"{key}[{e}][{t}]", max_bytes))
            max_bytes -= frames[-1].nbytes
        episodes.append(frames)
    return episodes


def _flag(payload: dict, key: str) -> bool:
    """An optional true/false field (bool() of an array raises, of a string is always true)."""
    value = payload.get(key, False)
    if value is not None and not isinstance(value, (bool, int, np.bool_, np.integer)):
        raise BadRequest(f"'{key}' must be true or false, got {type(value).__name__}")
    return bool(value)


class OfficialRewardService:
    """Answers official-protocol requests with a Rewarder (one call per step, batched across episodes)."""

    def __init__(self, rewarder: Rewarder, service_name: str = DEFAULT_SERVICE,
                 max_frame_bytes: int = safe_pickle.DEFAULT_MAX_BYTES, max_frames: int = DEFAULT_MAX_FRAMES) -> None:
        """`max_frame_bytes` and `max_frames` bound the decoded frames of one request: PNG/JPEG bytes and an array
        referenced many times decode to far more than the message carries."""
        self.rewarder = rewarder
        self.service_name = service_name
        self.max_frame_bytes = max_frame_bytes
        self.max_frames = max_frames

    def handle(self, message: Any) -> dict:
        """Route an envelope (list_interfaces / call_interface); every failure becomes an error reply."""
        if not isinstance(message, dict):
            return {"success": False, "message": "request must be a dict envelope"}
        kind, interface = message.get("type"), message.get("interface")
        # Only strings are compared: `==` on a numpy array gives an array, whose truth value raises.
        if isinstance(kind, str) and kind == "list_interfaces":
            return {"interfaces": [self.service_name]}
        if not (isinstance(kind, str) and kind == "call_interface" and isinstance(interface, str)
                and interface == self.service_name):
            return {"success": False, "message": "Invalid interface or payload"}
        try:
            return {"success": True, "data": self.rewards(message.get("payload"))}
        except BadRequest as exc:
            return {"success": False, "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 -- report to the client, keep serving
            log.exception("rewards request failed")
            return {"success": False, "message": f"{type(exc).__name__}: {exc}"}

    def rewards(self, payload: Any) -> dict:
        """Score every episode of the payload; returns valid_answers / text_outputs / text_inputs."""
        if not isinstance(payload, dict):
            raise BadRequest("payload must be a dict with task, front_images and wrist_images")
        task = payload.get("task")
        if not isinstance(task, str) or not task.strip():
            raise BadRequest("No 'task' in payload." if task is None else "'task' must be a non-empty string")
        from_zero, external_only = _flag(payload, "from_zero"), _flag(payload, "external_only")
        temperature = payload.get("temperature", None)
        if temperature is not None and (not isinstance(temperature, (int, float, np.number)) or temperature < 0):
            raise BadRequest(f"'temperature' must be a number >= 0, got {temperature!r}")
        front = _episodes(payload, "front_images", self.max_frame_bytes, self.max_frames)
        left = self.max_frame_bytes - sum(f.nbytes for episode in front for f in episode)
        wrist = [] if external_only else _episodes(payload, "wrist_images", left,
                                                   self.max_frames - sum(len(episode) for episode in front))
        if not external_only and [len(e) for e in wrist] != [len(e) for e in front]:
            raise BadRequest(f"front_images and wrist_images differ in episodes or lengths: "
                             f"{[len(e) for e in front]} vs {[len(e) for e in wrist]}")
        variant = ("external_only" if external_only else "full") if not from_zero else \
            ("external_only_from_zero" if external_only else "from_zero")
        return self._score_episodes(task, front, None if external_only else wrist, variant,
                                    None if temperature is None else float(temperature))

    def _score_episodes(self, task: str, front: list, wrist: Optional[list], variant: str,
                        temperature: Optional[float]) -> dict:
        """Step t = 1.. of all episodes together; the previous progress is each episode's last answer."""
        answers = [[0] for _ in front]
        outputs: list[list[str]] = [[] for _ in front]
        inputs: list[list[str]] = [[] for _ in front]
        for t in range(1, max((len(e) for e in front), default=0)):
            active = [e for e in range(len(front)) if len(front[e]) > t]
            queries = [ProgressQuery(
                task=task, external=(front[e][0], front[e][t - 1], front[e][t]),
                wrist=None if wrist is None else (wrist[e][0], wrist[e][t - 1], wrist[e][t]),
                previous_progress=0.0 if variant.endswith("from_zero") else float(answers[e][-1]),
                query_index=t) for e in active]
            if isinstance(self.rewarder, PromptedRewarder):
                results = self.rewarder.score(queries, variant=variant, temperature=temperature)
                texts = [self.rewarder.prompt_text(q, variant) for q in queries]
            else:
                results, texts = self.rewarder.score(queries), ["" for _ in queries]
            for e, result, text in zip(active, results, texts):
                answers[e].append(int(round(result.progress)))
                outputs[e].append(result.raw_text)
                inputs[e].append(text)
        return {"valid_answers": [np.asarray(a, dtype=np.int32) for a in answers],
                "text_outputs": outputs, "text_inputs": inputs}


class OfficialRewardServer:
    """ZeroMQ REP socket loop around an OfficialRewardService; `stop()` ends `serve_forever` within ~0.2 s."""

    def __init__(self, service: OfficialRewardService, bind: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 max_message_bytes: int = safe_pickle.DEFAULT_MAX_BYTES) -> None:
        import zmq

        self.service = service
        self.max_message_bytes = max_message_bytes
        self._stop = threading.Event()
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)  # compressed size bound, checked by zmq
        self.port = self._socket.bind_to_random_port(f"tcp://{bind}") if port == 0 else port
        if port != 0:
            self._socket.bind(f"tcp://{bind}:{port}")
        self.address = f"tcp://{bind}:{self.port}"
        self.requests = 0

    def serve_forever(self) -> None:
        """Answer requests until `stop()`; a bad request gets an error reply, never ends the loop."""
        import zmq

        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        log.info("official SOLE-R1 protocol on %s, interface %r", self.address, self.service.service_name)
        try:
            while not self._stop.is_set():
                if not poller.poll(200):
                    continue
                parts = self._socket.recv_multipart()  # all parts: a REP socket cannot reply mid-message
                self.requests += 1
                self._socket.send(safe_pickle.dumps(self._answer(parts)))
        finally:
            self._socket.close(0)
            self._context.term()

    def _answer(self, parts: list[bytes]) -> dict:
        """The reply to one request; never raises, so every request is answered and the loop goes on."""
        try:
            if len(parts) != 1:
                raise safe_pickle.UnsafeMessage(f"expected one message part, got {len(parts)}")
            message = safe_pickle.loads(parts[0], self.max_message_bytes)
        except safe_pickle.UnsafeMessage as exc:
            log.warning("rejected request: %s", exc)
            return {"success": False, "message": f"rejected request: {exc}"}
        try:
            return self.service.handle(message)
        except Exception as exc:  # noqa: BLE001 -- handle() answers bad requests itself; this is the last guard
            log.exception("request failed")
            return {"success": False, "message": f"{type(exc).__name__}: {exc}"}

    def stop(self) -> None:
        """Ask `serve_forever` to return (thread-safe)."""
        self._stop.set()
