"""The `zmq` rewarder against the project's own official-protocol server on 127.0.0.1: frames, batching, failures."""
import threading

import numpy as np
import pytest
import zmq

from sole_r1_config import config_dir
from sole_r1_model.rewarder import ProgressQuery, ProgressResult, Rewarder
from sole_r1_model.rewarders import make_rewarder
from sole_r1_model.rewarders.config import ZMQRewarderConfig
from sole_r1_model.rewarders.zmq_client import ZMQRewarder
from sole_r1_model.serve_official import OfficialRewardServer, OfficialRewardService

TASK = "Pick up the cube from the table"


def frame(value: int) -> np.ndarray:
    return np.full((8, 8, 3), value, dtype=np.uint8)


class AnsweringRewarder(Rewarder):
    """Answers previous + 10 in the official completion format and records every query it was asked."""

    name = "answering"

    def __init__(self):
        self.queries = []

    def _score(self, queries):
        self.queries.extend(queries)
        return [ProgressResult(progress=q.previous_progress + 10,
                               raw_text=f"<think>call {q.query_index}</think><answer>{int(q.previous_progress) + 10}%"
                                        "</answer>") for q in queries]


@pytest.fixture
def served():
    """(model double, client) with the server on a random 127.0.0.1 port in a thread."""
    model = AnsweringRewarder()
    server = OfficialRewardServer(OfficialRewardService(model), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = ZMQRewarder(ZMQRewarderConfig(endpoint=server.address, timeout_s=20.0))
    yield model, client
    client.close()
    server.stop()
    thread.join(5)


def query(index, previous=0.0, wrist=True, task=TASK):
    external = (frame(0), frame(index - 1) if index > 1 else frame(0), frame(index))
    return ProgressQuery(task=task, external=external, wrist=tuple(f + 100 for f in external) if wrist else None,
                         previous_progress=previous, query_index=index)


def test_the_first_query_is_one_model_call_on_first_and_current(served):
    model, client = served
    [result] = client.score([query(1)])
    assert result.valid and result.progress == 10 and result.reasoning == "call 1" and result.rewarder == "zmq"
    [asked] = model.queries
    assert [int(f[0, 0, 0]) for f in asked.external] == [0, 0, 1]      # (first, first, current)
    assert [int(f[0, 0, 0]) for f in asked.wrist] == [100, 100, 101]
    assert asked.previous_progress == 0


def test_a_later_query_asks_first_previous_current_with_the_servers_previous_answer(served):
    model, client = served
    [result] = client.score([query(5, previous=40.0)])
    assert [q.query_index for q in model.queries] == [1, 2]
    last = model.queries[-1]
    assert [int(f[0, 0, 0]) for f in last.external] == [0, 4, 5]
    assert last.previous_progress == 10        # the server's own answer for the previous frame
    assert result.valid and result.progress == 20


def test_from_zero_and_external_only_send_one_call_each(served):
    model, client = served
    client.config.from_zero = True
    [result] = client.score([query(5, wrist=False)])
    [asked] = model.queries
    assert asked.wrist is None and [int(f[0, 0, 0]) for f in asked.external] == [0, 0, 5]
    assert result.valid and result.progress == 10


def test_a_batch_is_one_request_per_task(served):
    model, client = served
    results = client.score([query(1), query(1, task="Open the drawer"), query(1)])
    assert [r.progress for r in results] == [10, 10, 10]
    assert sorted({q.task for q in model.queries}) == ["Open the drawer", TASK]
    assert client.interfaces() == {"rewards"}


def test_an_error_reply_is_an_invalid_result_with_the_previous_progress(served):
    _, client = served
    client.config.service = "no_such_interface"
    [result] = client.score([query(3, previous=30.0)])
    assert not result.valid and result.progress == 30 and "refused" in result.error


def test_a_silent_server_times_out_and_the_client_recovers():
    context = zmq.Context()
    silent = context.socket(zmq.REP)          # receives, never answers
    silent.setsockopt(zmq.LINGER, 0)
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    client = ZMQRewarder(ZMQRewarderConfig(endpoint=f"tcp://127.0.0.1:{port}", timeout_s=0.3))
    try:
        [result] = client.score([query(2, previous=25.0)])
        assert not result.valid and result.progress == 25 and "no reply" in result.error
        silent.recv()
        [again] = client.score([query(2, previous=25.0)])   # a rebuilt socket can send again
        assert "no reply" in again.error
    finally:
        client.close()
        silent.close(0)
        context.term()


def test_make_rewarder_builds_it_from_the_backend_name_and_the_shipped_yaml():
    with make_rewarder({"backend": "zmq", "endpoint": "tcp://10.0.0.5:8001"}) as rewarder:
        assert isinstance(rewarder, ZMQRewarder) and rewarder.config.endpoint == "tcp://10.0.0.5:8001"
    with make_rewarder(str(config_dir() / "rewarders" / "zmq.yaml")) as shipped:
        assert shipped.config == ZMQRewarderConfig()
    with pytest.raises(ValueError, match="endpoint"):
        ZMQRewarderConfig(endpoint="http://x:8000")
