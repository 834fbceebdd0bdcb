"""The `openai` backend against a local OpenAI-compatible stub: request shape, auth, retries, timeouts."""
import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from sole_r1_model.composite import CompositeFrameBuilder
from sole_r1_model.prompt import SYSTEM_PROMPT
from sole_r1_model.rewarders import make_rewarder
from sole_r1_model.rewarders.config import resolve_spec
from tests.model.http_stub import StubServer

ANSWER = "<think>The gripper holds the cube above the table.</think><answer>55%</answer>"


def _chat_completion(request) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": ANSWER}}]}).encode()


class StubAPI(StubServer):
    """A /v1/chat/completions server in a thread; `plan` lists (status, delay_s) per request, then 200s."""

    def __init__(self, plan=(), answer=_chat_completion):
        super().__init__(answer, plan)

    @property
    def base_url(self):
        return self.url + "/v1"

    def bodies(self):
        """The JSON bodies received, in order."""
        return [request.json() for request in self.requests]


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
    assert request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-test-123"
    body = request.json()
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
    assert "Authorization" not in stub.requests[0].headers


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
    assert {body["temperature"] for body in stub.bodies()} == {0.0}
    texts = sorted(body["messages"][1]["content"][1]["text"] for body in stub.bodies())
    assert sum("wrist camera" not in t for t in texts) == 1  # the query without wrist frames: external_only


@pytest.mark.parametrize("bad", [{"base_url": "localhost:8000"}, {"top_p": 0.0}, {"timeout_s": 0},
                                 {"max_tokens_field": "tokens"}])
def test_invalid_openai_options_are_rejected(bad):
    with pytest.raises(ValueError):
        make_rewarder({"backend": "openai", **bad})


# The official GPT server's question (reward_server constants.py USER_PROMPT_TEMPLATE_GPT), written out for the
# task "Pick up the cube from the table" and a previous answer of 20 %.
OFFICIAL_GPT_QUESTION = (
    "Here is an image containing multiple camera views of a robot attempting to complete a task. The first image is "
    "from the previous timestep. The second image is from the current timestep. The task description is: Pick up the "
    "cube from the table. The predicted task progress for the previous timestep was 20%. Predict the task progress "
    "for the current timestep. Before providing your final answer, first briefly provide a few sentences that reason "
    "about what is happening at the current timestep relative to the previous timestep. Your reasoning process "
    "should be no more than a few sentences and MUST BE enclosed within <think> </think> tags. Please refer to the "
    "images as timesteps instead of as separate images. Your final answer MUST BE enclosed within <answer> </answer> "
    "tags and should be an integer representing current task progress percentage. Example output format: "
    "<think>[detailed reasoning process]</think><answer>[current task progress]%</answer>"
)


def _jpeg(url):
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(url[len(prefix):])))
    assert image.format == "JPEG"
    return np.asarray(image.convert("RGB")).astype(int)


def test_official_baseline_prompt_sends_what_the_gpt_server_sends(make_query):
    query = make_query(previous=20.0, t=2)
    curly = "<think>The cube\u2019s lifted \u2014 nearly done.</think><answer>70%</answer>"

    def answer(request):
        return json.dumps({"choices": [{"message": {"role": "assistant", "content": curly}}]}).encode()

    with StubAPI(answer=answer) as stub, rewarder_for(stub, prompt="official_baseline") as rewarder:
        [result] = rewarder.score([query])
    [body] = stub.bodies()
    assert set(body) == {"model", "messages"}  # no system message, no sampling fields, like the official client
    [message] = body["messages"]
    assert message["role"] == "user"
    text, previous, current = message["content"]
    assert text == {"type": "text", "text": OFFICIAL_GPT_QUESTION}
    for part, frame in ((previous, query.external[1]), (current, query.external[2])):  # raw external frames
        decoded = _jpeg(part["image_url"]["url"])
        assert decoded.shape == frame.shape
        assert np.abs(decoded - frame.astype(int)).mean() < 4  # JPEG quality 90: close, not equal
    assert not np.array_equal(query.external[1], query.external[2])  # the two images are two different frames
    assert result.valid and result.progress == 70.0
    assert result.reasoning == "The cube's lifted - nearly done."  # typographic characters made ASCII


def test_official_baseline_sends_temperature_only_when_a_call_asks(make_query):
    with StubAPI() as stub, rewarder_for(stub, prompt="official_baseline") as rewarder:
        rewarder.score([make_query()], temperature=0.0)
    assert stub.bodies()[0]["temperature"] == 0.0


def test_shipped_gpt5_baseline_config_uses_the_official_prompt():
    backend, config = resolve_spec("gpt5_baseline")
    assert (backend, config.model, config.prompt) == ("openai", "gpt-5", "official_baseline")
    assert config.base_url == "https://api.openai.com/v1" and config.api_key_env == "OPENAI_API_KEY"


def test_unknown_prompt_is_rejected():
    with pytest.raises(ValueError, match="prompt must be one of"):
        make_rewarder({"backend": "openai", "prompt": "gpt"})
