"""The `robometer` backend against a local stub of Robometer's eval server (`POST /evaluate_batch_npy`)."""
import dataclasses
import io
import json
from email.parser import BytesParser
from email.policy import default as email_policy

import numpy as np
import pytest
import yaml

from sole_r1_model.rewarders import make_rewarder
from sole_r1_model.rewarders.config import BACKEND_CONFIGS, resolve_spec
from tests.model.http_stub import StubServer

# What the stub's model "predicts" per task: progress at each of the 3 frames sent, and success probabilities.
TRACES = {"Pick up the cube from the table": [0.0, 0.3, 0.55],
          "Open the drawer": [0.0, 0.1, 0.2],
          "Close the drawer": [0.1, 0.5, 0.7]}
SUCCESS = [0.01, 0.2, 0.6]


def parse_form(request):
    """(fields, files) of a multipart/form-data request, as the FastAPI server reads them (.npy files loaded)."""
    message = BytesParser(policy=email_policy).parsebytes(
        f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode() + request.body)
    fields, files = {}, {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename():
            assert part.get_filename().endswith(".npy")  # the server skips files not named .npy
            files[name] = np.load(io.BytesIO(part.get_payload(decode=True)), allow_pickle=False)
        else:
            fields[name] = part.get_payload(decode=True).decode()
    return fields, files


def samples_of(request):
    """The samples of one request in order, each with its frames array put back (reconstruct_payload_from_npy)."""
    fields, files = parse_form(request)
    samples = []
    for index in range(len(fields) - 1):  # every field but use_frame_steps is a sample
        sample = json.loads(fields[f"sample_{index}"])
        sample["trajectory"]["frames"] = files[sample["trajectory"]["frames"]["__numpy_file__"]]
        samples.append(sample)
    return samples


def eval_server(request):
    """The eval server's reply: one progress trace (and success trace) per sample, chosen by the sample's task."""
    samples = samples_of(request)
    return json.dumps({"outputs_preference": None,
                       "outputs_progress": {"progress_pred": [TRACES[s["trajectory"]["task"]] for s in samples]},
                       "outputs_success": {"success_probs": [SUCCESS for _ in samples]}}).encode()


def rewarder_for(stub, **options):
    return make_rewarder({"backend": "robometer", "url": stub.url, "backoff_s": 0.01, "backoff_max_s": 0.05,
                          **options})


def test_request_follows_the_eval_server_protocol(make_query):
    query = make_query(t=2)
    with StubServer(eval_server) as stub, rewarder_for(stub) as rewarder:
        [result] = rewarder.score([query])
    [request] = stub.requests
    assert request.path == "/evaluate_batch_npy"
    fields, _ = parse_form(request)
    assert fields["use_frame_steps"] == "false"
    [sample] = samples_of(request)
    trajectory = sample["trajectory"]
    assert sample["sample_type"] == "progress"
    assert trajectory["task"] == "Pick up the cube from the table"
    assert trajectory["frames_shape"] == [3, 192, 192, 3] and trajectory["metadata"] == {"subsequence_length": 3}
    assert trajectory["frames"].dtype == np.uint8
    assert np.array_equal(trajectory["frames"], np.stack(query.external))  # first, previous, current
    assert result.valid and result.progress == pytest.approx(55.0)  # 100 x the last frame's prediction
    assert json.loads(result.raw_text) == {"progress_pred": [0.0, 0.3, 0.55], "success_probs": SUCCESS}
    assert result.rewarder == "robometer" and not result.privileged


def test_batches_are_split_and_answered_in_order(make_query):
    queries = [make_query(task=task) for task in ("Open the drawer", "Close the drawer", "Pick up the cube from "
                                                  "the table")]
    with StubServer(eval_server) as stub, rewarder_for(stub, max_batch_size=2) as rewarder:
        results = rewarder.score(queries)
    assert [len(samples_of(r)) for r in stub.requests] == [2, 1]
    assert [r.progress for r in results] == pytest.approx([20.0, 70.0, 55.0])


def test_wrist_camera_and_a_query_without_it(make_query):
    with_wrist, without = make_query(task="Open the drawer"), make_query(task="Close the drawer", wrist=False,
                                                                         previous=9.0)
    with StubServer(eval_server) as stub, rewarder_for(stub, camera="wrist", use_frame_steps=True) as rewarder:
        results = rewarder.score([with_wrist, without])
    [sample] = samples_of(stub.requests[0])  # only the query that has wrist frames is asked
    assert np.array_equal(sample["trajectory"]["frames"], np.stack(with_wrist.wrist))
    assert parse_form(stub.requests[0])[0]["use_frame_steps"] == "true"
    assert results[0].valid and results[0].progress == pytest.approx(20.0)
    assert not results[1].valid and results[1].progress == 9.0 and "no wrist frames" in results[1].error


def test_server_error_is_retried_then_succeeds(make_query):
    with StubServer(eval_server, plan=[(500, 0.0)]) as stub, rewarder_for(stub) as rewarder:
        [result] = rewarder.score([make_query()])
    assert result.valid and result.progress == pytest.approx(55.0)
    assert len(stub.requests) == 2


def test_retries_give_up_with_invalid_results(make_query):
    with StubServer(eval_server, plan=[(503, 0.0)] * 2) as stub, rewarder_for(stub, max_retries=1) as rewarder:
        results = rewarder.score([make_query(previous=4.0), make_query(previous=6.0)])
    assert [(r.valid, r.progress) for r in results] == [(False, 4.0), (False, 6.0)]
    assert "HTTP 503" in results[0].error and "attempt 2/2" in results[0].error


def test_timeout_is_an_invalid_result_not_an_exception(make_query):
    with StubServer(eval_server, plan=[(200, 1.5)]) as stub, \
            rewarder_for(stub, timeout_s=0.3, max_retries=0) as rewarder:
        [result] = rewarder.score([make_query(previous=61.0)])
    assert not result.valid and result.progress == 61.0
    assert "timeout" in result.error


@pytest.mark.parametrize("body, error", [
    (b"Internal Server Error", "not a Robometer progress output"),
    (json.dumps({"outputs_progress": None}).encode(), "not a Robometer progress output"),
    (json.dumps({"outputs_progress": {"progress_pred": []}}).encode(), "0 progress traces for 1 samples"),
    (json.dumps({"outputs_progress": {"progress_pred": [[0.1, float("nan")]]}}).encode(), "finite numbers"),
    (json.dumps({"outputs_progress": {"progress_pred": [[]]}}).encode(), "non-empty list"),
])
def test_malformed_replies_are_invalid_counted_and_not_retried(make_query, body, error):
    with StubServer(lambda request: body) as stub, rewarder_for(stub) as rewarder:
        [result] = rewarder.score([make_query(previous=33.0)])
    assert not result.valid and result.progress == 33.0 and error in result.error
    assert (rewarder.stats["queries"], rewarder.stats["invalid"]) == (1, 1)
    assert len(stub.requests) == 1


def test_bearer_token_from_the_environment(make_query, monkeypatch):
    monkeypatch.setenv("ROBOMETER_TEST_TOKEN", "rb-123")
    with StubServer(eval_server) as stub, rewarder_for(stub, api_key_env="ROBOMETER_TEST_TOKEN") as rewarder:
        rewarder.score([make_query()])
    assert stub.requests[0].headers["Authorization"] == "Bearer rb-123"


def test_local_mode_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="not an architecture transformers can load.*eval_server.py"):
        make_rewarder({"backend": "robometer", "mode": "local"})


def test_shipped_robometer_config_restates_the_defaults(repo_root):
    path = repo_root / "config" / "rewarders" / "robometer.yaml"
    backend, config = resolve_spec("robometer")
    assert backend == "robometer" and config == BACKEND_CONFIGS["robometer"]()
    assert resolve_spec(path) == (backend, config)
    assert set(yaml.safe_load(path.read_text())) - {"backend"} == {f.name for f in dataclasses.fields(config)}


@pytest.mark.parametrize("bad", [{"url": "localhost:8000"}, {"camera": "top"}, {"max_batch_size": 0},
                                 {"timeout_s": -1}, {"use_frame_steps": "yes"}])
def test_invalid_robometer_options_are_rejected(bad):
    with pytest.raises(ValueError):
        make_rewarder({"backend": "robometer", **bad})
