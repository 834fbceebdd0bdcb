"""The `gemini` backend: the real google-genai client against a local stub of the generateContent REST API."""
import base64
import dataclasses
import io
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from sole_r1_model.composite import CompositeFrameBuilder
from sole_r1_model.prompt import SYSTEM_PROMPT
from sole_r1_model.rewarders import make_rewarder
from sole_r1_model.rewarders.config import BACKEND_CONFIGS, resolve_spec
from tests.model.http_stub import StubServer

pytest.importorskip("google.genai")

ANSWER = "<think>The gripper\u2019s fingers close on the cube.</think><answer>40%</answer>"

# The official Gemini server's question and system instruction (reward_server constants.py
# USER_PROMPT_TEMPLATE_GEMINI, SYSTEM_PROMPT_GEMINI), written out for "Pick up the cube from the table" at 20 %.
OFFICIAL_GEMINI_QUESTION = (
    "Here is an image containing multiple camera views of a robot attempting to complete a task. The first image is "
    "from the previous timestep. The second image is from the current timestep. The task description is: Pick up the "
    "cube from the table. The predicted task progress for the previous timestep was 20%. Predict the task progress "
    "for the current timestep. Note that the previous progress value might not be accurate. Please carefully assess "
    "the images to determine the correct progress for the current timestep. Also note that the performance of the "
    "robot is unknown so progress can increase or decrease at any timestep. Before providing your final answer, "
    "first briefly provide a few words that reason about what is happening at the current timestep relative to the "
    "previous timestep. Your reasoning process should be no more than one or two sentences and MUST BE enclosed "
    "within <think> </think> tags. IMPORTANT: Do not refer to 'the user' in your reasoning. Only reason as though it "
    "is an internal monologue thinking about the robot. If you are unsure about the progress, please try to avoid "
    "overestimation and provide a conservative estimate. Please refer to the images as timesteps instead of as "
    "separate images. Your final answer MUST BE enclosed within <answer> </answer> tags and should be an integer "
    "representing current task progress percentage. Example output format: <think>[detailed reasoning "
    "process]</think><answer>[current task progress]%</answer>"
)
OFFICIAL_GEMINI_SYSTEM = ("You are an expert roboticist with the goal of predicting task progress percentages given "
                          "frames from a video of a robot attempting to complete a task.")


def reply(*parts, finish="STOP"):
    """A GenerateContentResponse body whose first candidate has these parts (dicts)."""
    return json.dumps({"candidates": [{"content": {"role": "model", "parts": list(parts)}, "finishReason": finish}]
                       }).encode()


def answered(text=ANSWER):
    """A stub answer: a thought summary part, then the answer part (what include_thoughts returns)."""
    return lambda request: reply({"text": "Looking at the gripper.", "thought": True}, {"text": text})


@pytest.fixture
def gemini_key(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "gm-test-key")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


def rewarder_for(stub, **options):
    return make_rewarder({"backend": "gemini", "base_url": stub.url, "backoff_s": 0.01, "backoff_max_s": 0.05,
                          **options})


def _png(part):
    blob = part.get("inlineData") or part["inline_data"]
    assert (blob.get("mimeType") or blob.get("mime_type")) == "image/png"
    data = base64.urlsafe_b64decode(blob["data"])  # the SDK sends bytes URL-safe base64 encoded
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _keys(mapping):
    """A JSON object with its keys in one spelling (the REST API accepts camelCase and snake_case alike)."""
    return {key.replace("_", "").lower(): _keys(value) if isinstance(value, dict) else value
            for key, value in mapping.items()}


def test_official_baseline_request_is_what_the_gemini_server_sends(gemini_key, make_query):
    query = make_query(previous=20.0, t=2)
    with StubServer(answered()) as stub, rewarder_for(stub) as rewarder:
        [result] = rewarder.score([query])
    [request] = stub.requests
    assert request.path.endswith("/models/gemini-3-pro-preview:generateContent")
    assert request.headers["x-goog-api-key"] == "gm-test-key"
    body = request.json()
    [turn] = body["contents"]
    text, previous, current = turn["parts"]
    assert text == {"text": OFFICIAL_GEMINI_QUESTION}
    assert np.array_equal(_png(previous), query.external[1])  # the raw external frames, lossless
    assert np.array_equal(_png(current), query.external[2])
    assert body["systemInstruction"]["parts"] == [{"text": OFFICIAL_GEMINI_SYSTEM}]
    assert _keys(body["generationConfig"]) == {"temperature": 0.0, "topk": 1.0, "maxoutputtokens": 6000,
                                               "thinkingconfig": {"includethoughts": True, "thinkinglevel": "LOW"}}
    assert result.valid and result.progress == 40.0
    assert result.reasoning == "The gripper's fingers close on the cube."  # last non-thought part, made ASCII


def test_sole_r1_prompt_sends_the_composite_and_system_prompt(gemini_key, make_query):
    query = make_query(previous=20.0)
    with StubServer(answered()) as stub, rewarder_for(stub, prompt="sole_r1", temperature=1.0, top_p=0.9,
                                                      top_k=50, max_output_tokens=200, thinking_level=None) as rewarder:
        [result] = rewarder.score([query])
    body = stub.requests[0].json()
    image, text = body["contents"][0]["parts"]
    assert np.array_equal(_png(image), CompositeFrameBuilder(variant="full").build(query))
    assert "The task progress for the previous timestep is 20%." in text["text"]
    assert body["systemInstruction"]["parts"] == [{"text": SYSTEM_PROMPT}]
    assert _keys(body["generationConfig"]) == {"temperature": 1.0, "topk": 50.0, "topp": 0.9, "maxoutputtokens": 200}
    assert result.valid and result.progress == 40.0
    assert result.reasoning == "The gripper\u2019s fingers close on the cube."  # not rewritten outside the baseline


def test_google_api_key_is_the_fallback_and_api_key_env_overrides(monkeypatch, make_query):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    monkeypatch.setenv("MY_GEMINI_KEY", "my-key")
    with StubServer(answered()) as stub:
        with rewarder_for(stub) as rewarder:
            rewarder.score([make_query()])
        with rewarder_for(stub, api_key_env="MY_GEMINI_KEY") as rewarder:
            rewarder.score([make_query()])
    assert [r.headers["x-goog-api-key"] for r in stub.requests] == ["google-key", "my-key"]


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="no API key: export GEMINI_API_KEY or GOOGLE_API_KEY"):
        make_rewarder("gemini")


def test_rate_limit_is_retried_then_succeeds(gemini_key, make_query):
    with StubServer(answered(), plan=[(429, 0.0)]) as stub, rewarder_for(stub) as rewarder:
        [result] = rewarder.score([make_query()])
    assert result.valid and result.progress == 40.0
    assert len(stub.requests) == 2


def test_client_error_is_not_retried(gemini_key, make_query):
    with StubServer(answered(), plan=[(400, 0.0)]) as stub, rewarder_for(stub) as rewarder:
        [result] = rewarder.score([make_query(previous=12.0)])
    assert not result.valid and result.progress == 12.0
    assert "HTTP 400" in result.error and len(stub.requests) == 1


def test_timeout_is_an_invalid_result_not_an_exception(gemini_key, make_query):
    with StubServer(answered(), plan=[(200, 1.5)]) as stub, \
            rewarder_for(stub, timeout_s=0.3, max_retries=0) as rewarder:
        [result] = rewarder.score([make_query(previous=61.0)])
    assert not result.valid and result.progress == 61.0
    assert "timeout" in result.error


def test_malformed_answers_are_invalid_and_counted(gemini_key, make_query):
    bodies = iter([reply({"text": "The robot is about halfway."}),        # no <answer> tags
                   json.dumps({"candidates": []}).encode(),               # blocked: no candidate
                   b"<html>not json</html>"])                             # not a response at all
    with StubServer(lambda request: next(bodies)) as stub, rewarder_for(stub, max_concurrency=1) as rewarder:
        results = [rewarder.score([make_query(previous=33.0)])[0] for _ in range(3)]
    assert [r.valid for r in results] == [False, False, False]
    assert [r.progress for r in results] == [33.0, 33.0, 33.0]
    assert "no <answer>" in results[0].error and "no candidate" in results[1].error
    assert "malformed Gemini response" in results[2].error
    assert (rewarder.stats["queries"], rewarder.stats["invalid"]) == (3, 3)
    assert len(stub.requests) == 3  # a malformed answer is not retried


def test_shipped_gemini_config_restates_the_defaults(repo_root):
    path = repo_root / "config" / "rewarders" / "gemini.yaml"
    backend, config = resolve_spec("gemini")
    assert backend == "gemini" and config == BACKEND_CONFIGS["gemini"]()
    assert resolve_spec(path) == (backend, config)
    assert set(yaml.safe_load(path.read_text())) - {"backend"} == {f.name for f in dataclasses.fields(config)}
    assert (config.model, config.prompt) == ("gemini-3-pro-preview", "official_baseline")


@pytest.mark.parametrize("bad", [{"prompt": "gpt"}, {"thinking_level": "extreme"}, {"timeout_s": 0},
                                 {"base_url": "localhost:1234"}, {"top_k": 0}, {"max_retries": -1}])
def test_invalid_gemini_options_are_rejected(bad, gemini_key):
    with pytest.raises(ValueError):
        make_rewarder({"backend": "gemini", **bad})
