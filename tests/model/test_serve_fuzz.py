"""The official-protocol server under a few hundred random, truncated and hostile requests: every one gets an error
reply, the server keeps answering valid requests, and its peak memory stays bounded."""
import io
import os
import pickle
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time

import lz4.frame
import numpy as np
import psutil
import pytest
import zmq
from PIL import Image

from tests.model.test_serve_official import ForgedDtypeArray, StrideZeroArray, ZeroSizeDtypeArray, lz4_bomb

LIMIT = 32 << 20  # the server's message cap and frame budget in this test
# Idle the server process holds ~75 MB; one request adds at most a few copies of LIMIT (compressed, decompressed,
# unpickled arrays, decoded frames, float conversions) ~ 200 MB. Before the fixes, single requests took GBs.
PEAK_BOUND = 600 << 20
WATCHDOG = 1536 << 20  # kill a runaway server before it takes the machine with it
DEADLINE_S = 120

SERVER = textwrap.dedent('''
    import signal, sys
    from sole_r1_model.rewarder import ProgressResult, Rewarder
    from sole_r1_model.serve_official import OfficialRewardServer, OfficialRewardService

    class StepRewarder(Rewarder):
        """Answers previous + 1 at once: the fuzz exercises the server, not a model."""

        name = "step"

        def _score(self, queries):
            return [ProgressResult(progress=q.previous_progress + 1, raw_text="<answer>1%</answer>") for q in queries]

    limit = int(sys.argv[1])
    service = OfficialRewardService(StepRewarder(), max_frame_bytes=limit)
    server = OfficialRewardServer(service, "127.0.0.1", 0, max_message_bytes=limit)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    print(server.port, flush=True)
    server.serve_forever()
''')


class FuzzedServer:
    """The reward server in a subprocess on a free loopback port, a REQ client, and the server's peak RSS."""

    def __init__(self, log_path):
        self.log_path = log_path
        self.peak_rss = 0
        self.killed = False

    def __enter__(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(LIMIT)], stdout=subprocess.PIPE,
                                     stderr=self.log)
        port = self.proc.stdout.readline().strip()
        if not port:
            self.proc.kill()
            pytest.fail(f"server did not start: {self.log_path.read_text()[-2000:]}")
        self.context = zmq.Context()
        self._connect(int(port))
        self._stop = threading.Event()
        self.watchdog = threading.Thread(target=self._watch, daemon=True)
        self.watchdog.start()
        return self

    def _connect(self, port):
        self.port = port
        self.socket = self.context.socket(zmq.REQ)
        self.socket.setsockopt(zmq.RCVTIMEO, 20_000)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(f"tcp://127.0.0.1:{port}")

    def _watch(self):
        while not self._stop.wait(0.01):
            try:
                if psutil.Process(self.proc.pid).memory_info().rss > WATCHDOG:
                    self.killed = True
                    self.proc.kill()
                    return
            except psutil.NoSuchProcess:
                return

    def send(self, label, parts):
        """Send one request (a list of message parts) and return the unpickled reply."""
        self.socket.send_multipart(parts)
        try:
            reply = self.socket.recv()
        except zmq.Again:
            pytest.fail(f"no reply within 20 s to {label}; server alive: {self.proc.poll() is None}, "
                        f"killed by the memory watchdog: {self.killed}; log: {self.log_path.read_text()[-2000:]}")
        return pickle.loads(lz4.frame.decompress(reply))

    def __exit__(self, *exc):
        self._stop.set()
        self.socket.close()
        self.context.term()
        if self.proc.poll() is None:
            self.peak_rss = self._high_water_mark()
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.log.close()

    def _high_water_mark(self):
        """Peak RSS of the server's own address space (a child's ru_maxrss also counts its parent's at exec)."""
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0


def packed(value, protocol=4):
    return lz4.frame.compress(pickle.dumps(value, protocol=protocol))


def request(payload):
    return {"type": "call_interface", "interface": "rewards", "payload": payload}


def _jpeg(frame):
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG")
    return buffer.getvalue()


def valid_payload(rng, length=3):
    frames = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(2 * length)]
    return {"task": "Pick up the cube", "front_images": [frames[:length]], "wrist_images": [frames[length:]]}


class RunsCode:
    def __reduce__(self):
        return os.system, ("true",)


def hostile_requests():
    """(label, parts) of crafted attacks on memory, time and the loop itself."""
    nested = []
    for _ in range(60):
        nested = [nested, nested]  # 2^60 paths through 60 shared lists
    deep = []
    for _ in range(200):
        deep = [deep]
    png = io.BytesIO()
    Image.new("L", (4000, 4000)).save(png, format="PNG")  # 48 MB as RGB, a few KB as PNG
    float_frame = np.zeros((256, 256, 3), np.float32)  # 192 KB decoded per reference
    jpeg, jpeg_bomb = io.BytesIO(), io.BytesIO()
    Image.fromarray(np.full((24, 32, 3), 90, np.uint8)).save(jpeg, format="JPEG")
    Image.new("L", (4000, 4000)).save(jpeg_bomb, format="JPEG")  # 48 MB as RGB
    jpeg = jpeg.getvalue()
    yield "ndarray call with zero strides", [packed(request({"task": "t", "front_images": [[StrideZeroArray()] * 2],
                                                             "external_only": True}), protocol=2)]
    yield "zero-size dtype", [packed(request({"task": "t", "front_images": [[ZeroSizeDtypeArray()]],
                                              "external_only": True}))]
    yield "memo index 2^26", [lz4.frame.compress(b"\x80\x04Nr" + struct.pack("<I", 1 << 26) + b".")]
    yield "os.system", [packed(request({"task": RunsCode()}))]
    yield "object array", [packed(request({"task": "t", "front_images": [[np.array([None, 1], dtype=object)]]}))]
    yield "shared-list DAG", [packed(request({"task": "t", "front_images": nested, "external_only": True}))]
    yield "200 levels deep", [packed(request({"task": "t", "front_images": deep}))]
    yield "lz4 bomb, size in header", [lz4_bomb(256 << 20, 256 << 20)]
    yield "lz4 bomb, no size", [lz4_bomb(256 << 20, 0)]
    yield "lz4 bomb, header lies", [lz4_bomb(256 << 20, 1000)]
    yield "one float frame 4000 times", [packed(request({"task": "t", "front_images": [[float_frame] * 4000],
                                                         "external_only": True}))]
    yield "PNG bomb", [packed(request({"task": "t", "front_images": [[png.getvalue()] * 20],
                                       "external_only": True}))]
    for label, images in (("object array holding a str", [jpeg, "x"]), ("object array holding a dict", [jpeg, {}]),
                          ("truncated JPEG in an object array", [jpeg, jpeg[:200]]),
                          ("JPEG bomb in an object array", [jpeg_bomb.getvalue()] * 20)):
        yield label, [packed(request({"task": "t", "front_images": [np.array(images, dtype=object)],
                                      "external_only": True}))]
    yield "object dtype with forged flags", [packed(request({"task": "t", "front_images": [ForgedDtypeArray()],
                                                             "external_only": True}))]
    yield "two parts", [packed({"type": "list_interfaces"})] * 2
    yield "empty message", [b""]


ODD_VALUES = [None, 0, -1, 2**70, 1.5, float("nan"), complex(1, 2), True, "", "x" * 1000, b"list_interfaces",
              b"\x89PNG\r\n\x1a\n", [], [1, 2], (), {}, {1, 2}, frozenset(), np.array([1, 2]), np.array("rewards"),
              np.array(["list_interfaces", "call_interface"]), np.float64("nan"), np.zeros((0,)),
              np.zeros((4, 4, 5)), np.zeros((2, 3, 4, 5)), np.zeros((0, 0, 3), np.uint8), np.full((4, 4, 3), np.inf),
              np.zeros((4, 4, 3), bool), np.zeros((4, 4, 3), complex), np.zeros((4, 4, 3), "U3"),
              np.zeros((4, 4), [("a", "u1"), ("b", "f4")]), np.zeros((3, 8, 8), np.float32), {1: "x"},
              {None: None}, {(1, 2): "y"}, {np.int64(3): 1}, {frozenset([1]): 2}]


def wrong_requests(rng, count):
    """(label, parts, may_succeed) of well-formed pickles with wrong types, shapes and keys in every position."""
    pick = lambda: ODD_VALUES[rng.integers(len(ODD_VALUES))]  # noqa: E731
    for i in range(count):
        payload = valid_payload(rng, length=2)
        where = rng.integers(6)
        if where == 0:
            message = pick()  # not an envelope at all
        elif where == 1:
            message = {"type": pick(), "interface": "rewards", "payload": payload}
        elif where == 2:
            message = {"type": "call_interface", "interface": pick(), "payload": payload}
        elif where == 3:
            message = request(pick())
        else:
            key = ["task", "front_images", "wrist_images", "temperature", "from_zero", "external_only"][
                rng.integers(6)]
            inner = rng.integers(3)
            if inner == 0 or key not in ("front_images", "wrist_images"):
                payload[key] = pick()
            elif inner == 1:
                payload[key] = [pick()]
            else:
                payload[key] = [[pick(), payload[key][0][0]]]
            message = request(payload)
        # Envelope-level errors must be refused; a payload field may take an odd value that is still valid.
        yield (f"wrong value #{i} at position {where}", [packed(message, protocol=int(rng.integers(2, 6)))],
               where >= 4)


def broken_bytes(rng, valid, count):
    """(label, parts, may_succeed) of random bytes, truncated frames and bit flips of a valid request."""
    for i in range(count):
        kind = i % 4
        if kind == 0:
            yield f"random bytes #{i}", [rng.bytes(int(rng.integers(0, 2048)))], False
        elif kind == 1:
            yield f"lz4 magic + random #{i}", [b"\x04\x22\x4d\x18" + rng.bytes(int(rng.integers(0, 512)))], False
        elif kind == 2:
            yield f"truncated frame #{i}", [valid[: int(rng.integers(0, len(valid) - 1))]], False
        else:
            flipped = bytearray(valid)
            for _ in range(int(rng.integers(1, 8))):
                flipped[rng.integers(len(flipped))] ^= 1 << int(rng.integers(8))
            yield f"bit flips #{i}", [bytes(flipped)], True  # a flip inside pixel data is still a valid request


def test_hostile_and_broken_requests_leave_the_server_serving_in_bounded_memory(tmp_path):
    rng = np.random.default_rng(20240611)
    valid = packed(request(valid_payload(rng)))
    start = time.monotonic()
    sent = 0
    with FuzzedServer(tmp_path / "server.log") as server:
        def expect_valid_answer():
            reply = server.send("a valid request", [valid])
            assert reply["success"], reply
            assert reply["data"]["valid_answers"][0].tolist() == [0, 1, 2]

        expect_valid_answer()
        cases = [(label, parts, False) for label, parts in hostile_requests()]
        cases += list(wrong_requests(rng, 160))
        cases += list(broken_bytes(rng, valid, 160))
        order = rng.permutation(len(cases))
        for n, i in enumerate(order):
            label, parts, may_succeed = cases[i]
            reply = server.send(label, parts)
            assert isinstance(reply, dict) and "success" in reply, (label, reply)
            assert may_succeed or reply["success"] is False, (label, reply)
            sent += 1
            if n % 50 == 49:
                expect_valid_answer()
            assert time.monotonic() - start < DEADLINE_S, f"fuzz took over {DEADLINE_S} s after {sent} requests"
        expect_valid_answer()
        jpegs = np.array([_jpeg(frame) for frame in valid_payload(rng)["front_images"][0]], dtype=object)
        reply = server.send("object array of JPEG bytes", [packed(request({"task": "t", "front_images": [jpegs],
                                                                            "external_only": True}))])
        assert reply["success"] and reply["data"]["valid_answers"][0].tolist() == [0, 1, 2], reply
        assert server.proc.poll() is None and not server.killed
    assert sent >= 300
    assert 0 < server.peak_rss < PEAK_BOUND, f"server peak RSS {server.peak_rss >> 20} MB"
