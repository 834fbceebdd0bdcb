"""The `openai` backend against a local OpenAI-compatible stub: request shape, auth, retries, timeouts."""
import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from sole_r1_model.composite import CompositeFrameBuilder
from sole_r1_model.prompt import SYSTEM_PROMPT
from sole_r1_model.rewarders import make_rewarder

ANSWER = "<think>The gripper holds the cube above the table.</think><answer>55%</answer>"


class StubAPI:
    """A /v1/chat/completions server in a thread; `plan` lists (status, delay_s) per request, then 200s."""

    def __init__(self, plan=()):
        self.plan, self.requests = list(plan), []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 -- http.server naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, delay = stub.plan.pop(0) if stub.plan else (200, 0.0)
                time.sleep(delay)
                reply = {"choices": [{"message": {"role": "assistant", "content": ANSWER}}]} if status == 200 \
                    else {"error": {"message": "overloaded"}}
                data = json.dumps(reply).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def rewarder_for(stub, **options):
    spec = {"backend": "openai", "base_url": stub.base_url, "model": "sole-r1-test", "backoff_s": 0.01,
            "backoff_max_s": 0.05, **options}
    return make_rewarder(spec)


def test_request_carries_model_prompt_png_composite_and_auth(make_query, monkeypatch):
    monkeypatch.setenv("SOLE_R1_TEST_KEY", "sk-test-123")
    query = make_query(previous=20.0)
    with StubAPI() as stub, rewarder_for(stub, api_key_env="SOLE_R1_TEST_KEY") as rewarder:
        [result] = rewarder.score([query])
    assert result.valid and result.progress == 55.0
    assert result.reasoning == "The gripper holds the cube above the table."
    [request] = stub.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test-123"
    body = request["body"]
    assert body["model"] == "sole-r1-test"
    assert (body["temperature"], body["top_p"], body["top_k"], body["max_tokens"]) == (1.0, 0.9, 50, 200)
    system, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    image_part, text_part = user["content"]
    assert "The task progress for the previous timestep is 20%." in text_part["text"]
    prefix = "data:image/png;base64,"
    assert image_part["image_url"]["url"].startswith(prefix)
    png = Image.open(io.BytesIO(base64.b64decode(image_part["image_url"]["url"][len(prefix):])))
    assert png.format == "PNG"
    expected = CompositeFrameBuilder(variant="full").build(query)
    assert (png.height, png.width) == expected.shape[:2] == (784, 1176)
    assert np.array_equal(np.asarray(png.convert("RGB")), expected)  # lossless


def test_no_auth_header_when_the_key_variable_is_unset(make_query, monkeypatch):
    monkeypatch.delenv("SOLE_R1_UNSET_KEY", raising=False)
    with StubAPI() as stub, rewarder_for(stub, api_key_env="SOLE_R1_UNSET_KEY") as rewarder:
        rewarder.score([make_query()])
    assert "Authorization" not in stub.requests[0]["headers"]


def test_server_errors_are_retried_then_succeed(make_query):
    with StubAPI(plan=[(500, 0.0), (503, 0.0)]) as stub, rewarder_for(stub, max_retries=3) as rewarder:
        [result] = rewarder.score([make_query()])
    assert result.valid and result.progress == 55.0
    assert len(stub.requests) == 3


def test_client_errors_are_not_retried(make_query):
    with StubAPI(plan=[(400, 0.0)]) as stub, rewarder_for(stub, max_retries=3) as rewarder:
        [result] = rewarder.score([make_query(previous=33.0)])
    assert not result.valid and result.progress == 33.0
    assert "HTTP 400" in result.error
    assert len(stub.requests) == 1


def test_retries_give_up_with_an_invalid_result(make_query):
    with StubAPI(plan=[(500, 0.0)] * 3) as stub, rewarder_for(stub, max_retries=2) as rewarder:
        [result] = rewarder.score([make_query(previous=-4.0)])
    assert not result.valid and result.progress == -4.0
    assert "HTTP 500" in result.error and "attempt 3/3" in result.error
    assert len(stub.requests) == 3


def test_timeout_is_an_invalid_result_not_an_exception(make_query):
    with StubAPI(plan=[(200, 1.5)]) as stub, rewarder_for(stub, timeout_s=0.3, max_retries=0) as rewarder:
        [result] = rewarder.score([make_query(previous=61.0)])
    assert not result.valid and result.progress == 61.0
    assert "timeout" in result.error


def test_unreachable_server_is_an_invalid_result(make_query):
    rewarder = make_rewarder({"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "max_retries": 1,
                              "backoff_s": 0.01, "timeout_s": 2.0})
    with rewarder:
        [result] = rewarder.score([make_query(previous=8.0)])
    assert not result.valid and result.progress == 8.0
    assert "cannot reach" in result.error


def test_batch_is_answered_in_order_with_per_call_temperature(make_query):
    queries = [make_query(previous=1.0), make_query(previous=2.0, wrist=False, t=2), make_query(previous=3.0, t=3)]
    with StubAPI() as stub, rewarder_for(stub, max_concurrency=3) as rewarder:
        results = rewarder.score(queries, temperature=0.0)
    assert [r.valid for r in results] == [True, True, True]
    assert {r["body"]["temperature"] for r in stub.requests} == {0.0}
    texts = sorted(r["body"]["messages"][1]["content"][1]["text"] for r in stub.requests)
    assert sum("wrist camera" not in t for t in texts) == 1  # the query without wrist frames: external_only


@pytest.mark.parametrize("bad", [{"base_url": "localhost:8000"}, {"top_p": 0.0}, {"timeout_s": 0},
                                 {"max_tokens_field": "tokens"}])
def test_invalid_openai_options_are_rejected(bad):
    with pytest.raises(ValueError):
        make_rewarder({"backend": "openai", **bad})
