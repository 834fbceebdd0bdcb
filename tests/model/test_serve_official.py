"""The official-protocol ZeroMQ server: real REQ client round trips, feedback of answers, refused pickles."""
import argparse
import io
import os
import pickle
import struct
import threading
import time
import tracemalloc

import lz4.frame
import numpy as np
import pytest
import zmq
from PIL import Image

from sole_r1_model import safe_pickle
from sole_r1_model.commands import serve as serve_command
from sole_r1_model.parsing import parse_answer
from sole_r1_model.rewarder import ProgressResult, Rewarder
from sole_r1_model.serve_official import OfficialRewardServer, OfficialRewardService

TASK = "Pick up the cube from the table"


class CountingRewarder(Rewarder):
    """Answers `previous + 10` for every query and records what it was asked (a test double of a model)."""

    name = "counting"

    def __init__(self):
        self.queries = []

    def _score(self, queries):
        self.queries.extend(queries)
        return [ProgressResult(progress=q.previous_progress + 10, raw_text=f"step {q.query_index}")
                for q in queries]


class Served:
    """A server on a random localhost port in a thread, and an official-style REQ client (lz4 + pickle)."""

    def __init__(self, rewarder, timeout_ms=60_000):
        self.server = OfficialRewardServer(OfficialRewardService(rewarder), "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.RCVTIMEO, timeout_ms)
        self.socket.setsockopt(zmq.LINGER, 0)

    def __enter__(self):
        self.thread.start()
        self.socket.connect(self.server.address)
        return self

    def raw(self, data: bytes):
        self.socket.send(data)
        return pickle.loads(lz4.frame.decompress(self.socket.recv()))

    def call(self, payload):
        return self.raw(lz4.frame.compress(pickle.dumps({"type": "call_interface", "interface": "rewards",
                                                         "payload": payload})))

    def __exit__(self, *exc):
        self.socket.close()
        self.context.term()
        self.server.stop()
        self.thread.join(timeout=5)


def episode(lift_frames, length):
    return [pair[0] for pair in lift_frames[:length]], [pair[1] for pair in lift_frames[:length]]


def test_round_trip_with_the_tiny_model(tiny_rewarder, lift_frames):
    (front_a, wrist_a), (front_b, wrist_b) = episode(lift_frames, 3), episode(lift_frames, 2)
    with Served(tiny_rewarder) as served:
        assert served.raw(lz4.frame.compress(pickle.dumps({"type": "list_interfaces"}))) == \
            {"interfaces": ["rewards"]}
        reply = served.call({"task": TASK, "front_images": [front_a, front_b], "wrist_images": [wrist_a, wrist_b]})
    assert reply["success"], reply.get("message")
    data = reply["data"]
    assert [a.dtype for a in data["valid_answers"]] == [np.int32, np.int32]
    assert [len(a) for a in data["valid_answers"]] == [3, 2]
    assert [len(o) for o in data["text_outputs"]] == [2, 1]
    for answers, outputs in zip(data["valid_answers"], data["text_outputs"]):
        assert answers[0] == 0
        for t, text in enumerate(outputs, start=1):  # each answer is the parsed text, or carried forward
            assert answers[t] == round(parse_answer(text, answers[t - 1]).progress)
    first_input = data["text_inputs"][0][0]
    assert "<|im_start|>assistant\n" in first_input and f"The task description is: {TASK}." in first_input


def test_answers_are_fed_back_as_previous_progress(lift_frames):
    rewarder = CountingRewarder()
    front, wrist = episode(lift_frames, 4)
    with Served(rewarder) as served:
        reply = served.call({"task": TASK, "front_images": [front], "wrist_images": [wrist]})
    assert reply["data"]["valid_answers"][0].tolist() == [0, 10, 20, 30]
    assert [q.previous_progress for q in rewarder.queries] == [0, 10, 20]
    third = rewarder.queries[2]  # t=3: first frame, frame 2, frame 3
    assert third.external[0] is not None and np.array_equal(third.external[1], front[2])
    assert np.array_equal(third.wrist[2], wrist[3])


def test_external_only_needs_no_wrist_images_and_accepts_png_and_chw(lift_frames):
    rewarder = CountingRewarder()
    png = io.BytesIO()
    Image.fromarray(lift_frames[1][0]).save(png, format="PNG")
    front = [lift_frames[0][0].transpose(2, 0, 1), png.getvalue(), lift_frames[2][0].astype(np.float32) / 255.0]
    with Served(rewarder) as served:
        reply = served.call({"task": TASK, "front_images": [front], "external_only": True, "temperature": 0.5})
    assert reply["success"], reply.get("message")
    assert all(q.wrist is None for q in rewarder.queries)
    assert np.array_equal(rewarder.queries[1].external[1], lift_frames[1][0])  # PNG decoded losslessly
    assert rewarder.queries[0].external[0].shape == lift_frames[0][0].shape  # CHW turned into HWC


def test_malicious_pickle_is_rejected_without_executing(tmp_path, lift_frames):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    rewarder = CountingRewarder()
    front, wrist = episode(lift_frames, 2)
    with Served(rewarder) as served:
        reply = served.raw(lz4.frame.compress(pickle.dumps({"type": "call_interface", "interface": "rewards",
                                                            "payload": {"task": Exploit()}})))
        assert reply["success"] is False and "refused to unpickle" in reply["message"]
        assert served.raw(b"not lz4 at all")["success"] is False
        # The server keeps serving after hostile and broken requests.
        assert served.call({"task": TASK, "front_images": [front], "wrist_images": [wrist]})["success"]
    assert not marker.exists()
    assert len(rewarder.queries) == 1


@pytest.mark.parametrize("payload, message", [
    ({"front_images": [[]], "wrist_images": [[]]}, "No 'task' in payload."),
    ({"task": TASK, "wrist_images": [[]]}, "No 'front_images' in payload."),
    ({"task": TASK, "front_images": [[]]}, "No 'wrist_images' in payload."),
    ({"task": TASK, "front_images": [["junk"]], "wrist_images": [["junk"]]}, "front_images[0][0]"),
    ({"task": TASK, "front_images": [[np.zeros((4, 4), np.float64) + np.nan]], "wrist_images": [[]]}, "finite"),
])
def test_bad_payloads_get_clear_error_replies(payload, message):
    with Served(CountingRewarder()) as served:
        reply = served.call(payload)
    assert reply["success"] is False
    assert message in reply["message"]


def envelope(**fields):
    return lz4.frame.compress(pickle.dumps(fields))


def test_malformed_envelopes_get_error_replies_and_the_server_keeps_serving(lift_frames):
    front, wrist = episode(lift_frames, 2)
    with Served(CountingRewarder(), timeout_ms=5_000) as served:
        for bad in [envelope(type=np.array([1, 2])), envelope(type=["list_interfaces"]),
                    envelope(type="call_interface", interface=np.array(["rewards", "x"])),
                    envelope(type="call_interface", interface=b"rewards", payload={})]:
            reply = served.raw(bad)
            assert reply["success"] is False and "interface" in reply["message"]
        served.socket.send_multipart([envelope(type="list_interfaces")] * 2)  # a REP socket must still answer
        reply = pickle.loads(lz4.frame.decompress(served.socket.recv()))
        assert reply["success"] is False and "one message part" in reply["message"]
        assert served.call({"task": TASK, "front_images": [front], "wrist_images": [wrist]})["success"]
        assert served.thread.is_alive()


class StrideZeroArray:
    """Pickles as a direct `numpy.ndarray(shape, dtype, buffer, offset, strides)` call: 8 bytes seen as 864 MB."""

    def __reduce__(self):
        return np.ndarray, ((6000, 6000, 3), np.dtype("f8"), b"\0" * 8, 0, (0, 0, 0))


def test_an_array_built_by_calling_ndarray_is_refused_while_unpickling():
    request = envelope(type="call_interface", interface="rewards",
                       payload={"task": TASK, "front_images": [[StrideZeroArray()] * 2], "external_only": True})
    assert len(request) < 400
    start = time.perf_counter()
    with pytest.raises(safe_pickle.UnsafeMessage, match="ndarray"):
        safe_pickle.loads(request)
    with Served(CountingRewarder(), timeout_ms=5_000) as served:
        reply = served.raw(request)
    assert reply["success"] is False and "ndarray" in reply["message"]
    assert time.perf_counter() - start < 2.0


class ZeroSizeDtypeArray:
    """numpy's own pickle path (`_reconstruct` + state) with a 0-byte dtype: a 10^12-element array from no data."""

    def __reduce__(self):
        from numpy.core import multiarray

        return multiarray._reconstruct, (np.ndarray, (0,), b"b"), (1, (10**6, 10**6, 3), np.dtype("V0"), False, b"")


def test_arrays_with_zero_strides_are_refused():
    with pytest.raises(safe_pickle.UnsafeMessage, match="stride"):
        safe_pickle.loads(lz4.frame.compress(pickle.dumps({"front_images": [[ZeroSizeDtypeArray()]]})))


def test_shared_references_load_once_and_in_linear_time():
    frame = np.zeros((64, 64, 3), np.uint8)
    loaded = safe_pickle.loads(lz4.frame.compress(pickle.dumps([frame] * 100)))
    assert len(loaded) == 100 and all(f is loaded[0] for f in loaded)  # one array, counted once
    nested = []
    for _ in range(60):  # 2^60 paths through 60 lists
        nested = [nested, nested]
    done = []
    worker = threading.Thread(target=lambda: done.append(safe_pickle.loads(lz4.frame.compress(pickle.dumps(nested)))),
                              daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert done, "walking a 60-level DAG of shared lists did not finish in 10 s"


def test_a_memo_index_far_beyond_the_objects_stored_is_refused():
    # PROTO 4, NONE, LONG_BINPUT 2^26, STOP: 9 bytes the C unpickler answers with a 1 GiB memo table.
    request = lz4.frame.compress(b"\x80\x04Nr" + struct.pack("<I", 1 << 26) + b".")
    tracemalloc.start()
    try:
        with pytest.raises(safe_pickle.UnsafeMessage, match="memo"):
            safe_pickle.loads(request)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def lz4_bomb(size, declared):
    """An lz4 frame of `size` zero bytes whose header declares `declared` (0: no size), built chunk by chunk."""
    compressor = lz4.frame.LZ4FrameCompressor()
    parts, chunk = [compressor.begin(source_size=declared)], bytes(16 << 20)
    for _ in range(size // len(chunk)):
        parts.append(compressor.compress(chunk))
    if declared in (0, size):  # lz4 checks the declared size at the end mark: a lying frame has none
        parts.append(compressor.flush())
    return b"".join(parts)


@pytest.mark.parametrize("declared", [256 << 20, 1 << 30, 0, 1000])
def test_an_lz4_bomb_is_refused_without_decompressing_more_than_the_limit(declared):
    bomb, limit = lz4_bomb(256 << 20, declared), 32 << 20
    tracemalloc.start()
    try:
        with pytest.raises(safe_pickle.UnsafeMessage, match="decompress|truncated"):
            safe_pickle.loads(bomb, max_bytes=limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A declared size over the limit is refused from the header; otherwise no more than the limit is produced.
    assert peak < (1 << 20 if declared > limit else 2 * limit + (1 << 20))


def rewards_request(front):
    return {"type": "call_interface", "interface": "rewards",
            "payload": {"task": TASK, "front_images": front, "external_only": True}}


def test_decoded_frames_of_a_request_are_bounded():
    service = OfficialRewardService(CountingRewarder(), max_frame_bytes=4 << 20)
    frame = np.zeros((256, 256, 3), np.float32)  # carried once however often it is referenced
    assert service.handle(rewards_request([[frame] * 10]))["success"]  # 10 x 192 KB decoded
    reply = service.handle(rewards_request([[frame] * 100]))  # 100 x 192 KB: over the 4 MB budget
    assert reply["success"] is False and "front_images[0][21]" in reply["message"]
    png = io.BytesIO()
    Image.new("L", (2000, 2000)).save(png, format="PNG")  # 12 MB as RGB from a few KB
    reply = service.handle(rewards_request([[png.getvalue()] * 2]))
    assert reply["success"] is False and "2000x2000" in reply["message"]


def test_rewarder_errors_become_error_replies(lift_frames):
    from sole_r1_model.rewarders import make_rewarder

    front, wrist = episode(lift_frames, 2)
    with Served(make_rewarder("oracle")) as served:  # no simulator progress over this protocol
        reply = served.call({"task": TASK, "front_images": [front], "wrist_images": [wrist]})
    assert reply["success"] is False and "privileged_progress" in reply["message"]


def test_serve_command_defaults_to_localhost_and_the_official_port():
    parser = argparse.ArgumentParser()
    serve_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve"])
    assert (args.protocol, args.bind, args.port, args.rewarder, args.service_name) == \
        ("official", "127.0.0.1", 8001, "sole_r1", "rewards")
    assert args.func is serve_command.run


def test_serve_command_reports_a_bad_rewarder_spec():
    parser = argparse.ArgumentParser()
    serve_command.register(parser.add_subparsers(dest="command"))
    assert serve_command.run(parser.parse_args(["serve", "--rewarder", "no-such-backend", "--port", "0"])) == 2


def encoded(frame, image_format, **options):
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def test_object_arrays_of_compressed_image_bytes_are_decoded(lift_frames):
    # The official client's "array of compressed bytes": numpy object arrays holding PNG/JPEG bytes per frame.
    rewarder = CountingRewarder()
    front, wrist = episode(lift_frames, 3)
    front_bytes = np.array([encoded(front[0], "PNG"), encoded(front[1], "JPEG", quality=95),
                            encoded(front[2], "PNG")], dtype=object)
    wrist_bytes = np.empty((1, 3), dtype=object)  # a 2-D (episodes x frames) object array works as well
    wrist_bytes[0, :] = [encoded(f, "JPEG", quality=95) for f in wrist]
    with Served(rewarder) as served:
        reply = served.call({"task": TASK, "front_images": [front_bytes], "wrist_images": wrist_bytes})
        assert reply["success"], reply.get("message")
        assert reply["data"]["valid_answers"][0].tolist() == [0, 10, 20]
        third = rewarder.queries[1]  # t=2: first frame, frame 1, frame 2
        assert np.array_equal(third.external[0], front[0]) and np.array_equal(third.external[2], front[2])  # PNG
        jpeg = np.asarray(Image.open(io.BytesIO(front_bytes[1])).convert("RGB"))
        assert np.array_equal(third.external[1], jpeg)  # JPEG: exactly what the decoder gives ...
        assert np.abs(third.external[1].astype(int) - front[1]).mean() < 3  # ... which is close to the frame
        assert np.abs(third.wrist[2].astype(int) - wrist[2]).mean() < 3


def jpeg_bomb():
    """A 6000x6000 JPEG (108 MB decoded) of a few hundred KB."""
    return encoded(np.zeros((6000, 6000, 3), np.uint8), "JPEG", quality=10)


def test_hostile_image_payloads_get_clear_errors_and_the_server_keeps_answering(lift_frames):
    front, wrist = episode(lift_frames, 2)
    good = encoded(front[0], "JPEG")
    truncated = good[: len(good) // 2]
    hostile = [
        (np.array([good, "not bytes"], dtype=object), "object arrays may only hold bytes (compressed images), "
                                                      "found a str"),
        (np.array([good, None], dtype=object), "found a NoneType"),
        (np.array([good, np.zeros(3, np.uint8)], dtype=object), "found a ndarray"),
        (np.array([good, [good]], dtype=object), "found a list"),
        ([good, truncated], "front_images[0][1]: bytes are not a readable"),
        (np.array([good, truncated], dtype=object), "truncated"),
        ([jpeg_bomb()], "6000x6000"),
        ([encoded(np.zeros((8, 8), np.uint8), "TIFF")], "not a readable PNG/JPEG/WebP"),
        ([np.array([good], dtype=object)], "an object array is not one image"),
    ]
    service = OfficialRewardService(CountingRewarder(), max_frame_bytes=64 << 20)
    with Served(CountingRewarder()) as served:
        served.server.service = service
        for frames, message in hostile:
            reply = served.call({"task": TASK, "front_images": [frames], "external_only": True})
            assert reply["success"] is False and message in reply["message"], (message, reply)
            ok = served.call({"task": TASK, "front_images": [[good, good]], "external_only": True})
            assert ok["success"], ok.get("message")
        assert served.thread.is_alive()


def test_a_frame_limit_bounds_shared_references():
    service = OfficialRewardService(CountingRewarder(), max_frames=50)
    png = encoded(np.zeros((4, 4, 3), np.uint8), "PNG")  # one object, referenced 60 times: 60 decodings
    reply = service.handle(rewards_request([[png] * 60]))
    assert reply["success"] is False and "front_images[0][50]: over the frame limit" in reply["message"]
    assert service.handle(rewards_request([[png] * 50]))["success"]


class ForgedDtypeArray:
    """An object array whose pickled dtype says it holds no objects: numpy would read these bytes as pointers."""

    def __reduce__(self):
        from numpy.core import multiarray

        return multiarray._reconstruct, (np.ndarray, (0,), b"b"), (1, (2,), ForgedObjectDtype(), False, b"A" * 16)


class ForgedObjectDtype:
    def __reduce__(self):
        return np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 1)


def test_a_dtype_with_forged_flags_is_refused_before_numpy_uses_it():
    for protocol in (2, 4, 5):
        with pytest.raises(safe_pickle.UnsafeMessage, match="dtype pickled with a state"):
            safe_pickle.loads(lz4.frame.compress(pickle.dumps({"front_images": ForgedDtypeArray()}, protocol)))
    images = np.array([b"\x89PNG", b"\xff\xd8"], dtype=object)
    assert safe_pickle.loads(lz4.frame.compress(pickle.dumps(images)))[1] == b"\xff\xd8"


def test_a_frame_over_the_pixel_limit_is_refused_before_conversion():
    from sole_r1_model.serve_official import BadRequest, decode_frame

    huge = np.broadcast_to(np.zeros((1, 1, 1), np.float32), (8193, 8193, 1))  # no memory behind it
    with pytest.raises(BadRequest, match="8193x8193 image has more than"):
        decode_frame(huge, "front_images[0][0]")
