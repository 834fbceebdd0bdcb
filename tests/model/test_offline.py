"""Offline scoring: sequential key-frame calls with feedback, official-shape outputs, robustness, `sole-r1 score`
(and `sole-r1 prompt`) on good and bad input."""
import argparse
import json
import logging
import sys
import types

import cv2
import pytest

from sole_r1_model.commands import prompt as prompt_command
from sole_r1_model.commands import score as score_command
from sole_r1_model.frames import read_frames, split_frames
from sole_r1_model.offline import score_video, write_outputs
from sole_r1_model.parsing import parse_answer
from sole_r1_model.rewarder import ProgressResult, Rewarder
from tests.model.test_frames import write_video

EP14 = "robosuite_lift_episode_14_successful_max_reward_100"
KEYS = [0, 2, 5, 8, 10, 13, 16, 18, 21, 24]


class ScriptedModel(Rewarder):
    """Stands in for the model at its text boundary: returns scripted completions, parsed like a real backend."""

    def __init__(self, completions, name="SOLE-R1", fail_at=()):
        self.completions, self.name, self.fail_at = list(completions), name, set(fail_at)
        self.queries = []

    def _score(self, queries):
        results = []
        for query in queries:
            self.queries.append(query)
            if query.query_index in self.fail_at:
                raise ConnectionError("reward server unreachable")
            text = self.completions[(query.query_index - 1) % len(self.completions)]
            parsed = parse_answer(text, query.previous_progress)
            results.append(ProgressResult(progress=parsed.progress, reasoning=parsed.reasoning, raw_text=text,
                                          valid=parsed.valid, error=parsed.error, latency=0.01))
        return results


@pytest.fixture(scope="module")
def ep14(official_lift):
    """Official episode 14: split frames, the official record, and its ground truth."""
    external, wrist = split_frames(read_frames(official_lift / "videos" / f"{EP14}.mp4").frames)
    official = json.loads((official_lift / "model_outputs" / f"{EP14}.json").read_text())
    truth = json.loads((official_lift / "ground_truth" / f"{EP14}.json").read_text())["ground-truth rewards"]
    return external, wrist, official, truth


def _replay(official):
    return ScriptedModel([official[0]["reasoning_traces"][i] for i in KEYS[1:]])


def test_replaying_the_official_answers_reproduces_the_official_record(ep14):
    external, wrist, official, _ = ep14
    model = _replay(official)
    record = score_video(model, external, wrist, "Pick up the cube from the table.", progress=False)
    assert record.to_official() == official[0]
    assert record.key_frame_indices == KEYS and record.num_calls == 9 and record.num_invalid == 0
    # Each call fed back the previous parsed answer and showed first / previous key / current key frames.
    assert [q.previous_progress for q in model.queries] == [0, 10, 24, 28, 26, 28, 32, 33, 100]
    assert [q.query_index for q in model.queries] == list(range(1, 10))
    for k, query in enumerate(model.queries, start=1):
        assert query.external[0] is external[0] and query.wrist[0] is wrist[0]
        assert query.external[1] is external[KEYS[k - 1]] and query.external[2] is external[KEYS[k]]
        assert query.wrist[2] is wrist[KEYS[k]]


def test_written_json_loads_with_the_official_keys_and_video_and_plot_are_real(ep14, tmp_path):
    external, wrist, official, truth = ep14
    record = score_video(_replay(official), external, wrist, "Pick up the cube from the table.", progress=False)
    paths = write_outputs(record, external, wrist, tmp_path, EP14, ground_truth=truth, height=192)
    assert {p.name for p in tmp_path.iterdir()} == {f"{EP14}.json", f"{EP14}.mp4", f"{EP14}.png"}
    written = json.loads(paths["json"].read_text())
    assert isinstance(written, list) and list(written[0]) == list(official[0])
    assert written == official
    video = cv2.VideoCapture(str(paths["mp4"]))
    count, first = 0, None
    while True:
        ok, frame = video.read()
        if not ok:
            break
        first = frame if first is None else first
        count += 1
    video.release()
    assert count == 10 and first.shape[0] > 192 and first.shape[1] >= 4 * 192
    plot = cv2.imread(str(paths["png"]))
    assert plot is not None and plot.shape[0] > 200 and plot.std() > 10


def test_invalid_and_failed_calls_carry_progress_forward_and_are_counted(ep14):
    external, wrist, *_ = ep14
    texts = ["<think>a</think><answer>10%</answer>", "<think>b</think><answer>about half</answer>",
             "<answer>40%</answer>", "<answer>50</answer>"]
    model = ScriptedModel(texts, fail_at={4})
    record = score_video(model, external, wrist, "lift", progress=False)
    # call 2 unparsable -> 10 carried; call 4 raised -> 40 carried; the script repeats (call 6 unparsable).
    assert record.key_progress[:7] == [0, 10, 10, 40, 40, 10, 10]
    assert record.key_valid[:7] == [True, True, False, True, False, True, False] and record.num_invalid == 3
    assert model.queries[2].previous_progress == 10 and model.queries[4].previous_progress == 40
    assert "unreachable" in record.reasoning_traces[KEYS[4]]  # never blank: the key frame stays readable


def test_non_finite_progress_from_a_backend_counts_as_invalid(ep14):
    external, *_ = ep14

    class NanModel(Rewarder):
        name = "nan"

        def _score(self, queries):
            return [ProgressResult(progress=float("nan"), raw_text="") for _ in queries]

    record = score_video(NanModel(), external[:3], None, "lift", progress=False)
    assert record.key_progress == [0, 0, 0] and record.num_invalid == 2


def test_without_wrist_frames_only_the_external_camera_is_sent(ep14):
    external, *_ = ep14
    model = ScriptedModel(["<answer>5%</answer>"])
    record = score_video(model, external[:4], None, "lift", variant="full", progress=False)
    assert record.variant == "external_only" and all(q.wrist is None for q in model.queries)
    assert record.key_frame_indices == [0, 1, 2, 3] and record.rewards == [0, 5, 5, 5]


def test_mismatched_cameras_and_missing_task_are_rejected(ep14):
    external, wrist, *_ = ep14
    with pytest.raises(ValueError, match="must match"):
        score_video(ScriptedModel(["x"]), external, wrist[:5], "lift")
    with pytest.raises(ValueError, match="task"):
        score_video(ScriptedModel(["x"]), external, wrist, " ")


def _run_score(argv):
    parser = argparse.ArgumentParser()
    score_command.register(parser.add_subparsers())
    args = parser.parse_args(["score"] + argv)
    return args.func(args)


@pytest.fixture()
def fake_backends(monkeypatch, ep14):
    """A stand-in `sole_r1_model.rewarders` module whose make_rewarder returns the scripted model."""
    made = []
    module = types.ModuleType("sole_r1_model.rewarders")

    def make_rewarder(name_or_path):
        if name_or_path != "scripted":
            raise ValueError(f"unknown rewarder {name_or_path!r}")
        made.append(_replay(ep14[2]))
        return made[-1]

    module.make_rewarder = make_rewarder
    monkeypatch.setitem(sys.modules, "sole_r1_model.rewarders", module)
    return made


def test_score_command_writes_outputs_per_video(official_lift, tmp_path, fake_backends):
    video = official_lift / "videos" / f"{EP14}.mp4"
    truth = official_lift / "ground_truth" / f"{EP14}.json"
    code = _run_score([str(video), "--side-by-side", "--task", "Pick up the cube from the table.",
                       "--rewarder", "scripted", "--out", str(tmp_path), "--ground-truth", str(truth),
                       "--quiet", "--no-video"])
    assert code == 0
    written = json.loads((tmp_path / f"{EP14}.json").read_text())
    assert written == json.loads((official_lift / "model_outputs" / f"{EP14}.json").read_text())
    assert (tmp_path / f"{EP14}.png").is_file() and not (tmp_path / f"{EP14}.mp4").exists()
    assert fake_backends[0].queries[0].wrist is not None


def test_score_command_reports_bad_use_with_exit_code_2(official_lift, tmp_path, fake_backends):
    video = str(official_lift / "videos" / f"{EP14}.mp4")
    assert _run_score([video, "--task", "t", "--rewarder", "nope", "--out", str(tmp_path)]) == 2
    assert _run_score([video, video, "--wrist", video, "--task", "t", "--rewarder", "scripted",
                       "--out", str(tmp_path)]) == 2
    assert _run_score([str(tmp_path / "missing.mp4"), "--task", "t", "--rewarder", "scripted",
                       "--out", str(tmp_path), "--quiet"]) == 2


def _one_error(caplog):
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    return errors[0]


@pytest.mark.parametrize("problem", ["missing truth", "malformed truth", "truth too short", "second video missing",
                                     "not a video", "one frame", "out is a file"])
def test_score_command_checks_every_input_before_loading_the_rewarder(official_lift, tmp_path, fake_backends, caplog,
                                                                      problem):
    video, truth = str(official_lift / "videos" / f"{EP14}.mp4"), tmp_path / "truth.json"
    videos, truths, out, named = [video], [str(official_lift / "ground_truth" / f"{EP14}.json")], tmp_path, None
    if problem == "missing truth":
        truths, named = [str(truth)], "truth.json"
    elif problem == "malformed truth":
        truth.write_text('{"task description": "lift", "ground-truth rewards": [0, 1,')
        truths, named = [str(truth)], "truth.json"
    elif problem == "truth too short":
        truth.write_text(json.dumps({"task description": "lift", "ground-truth rewards": [0, 50, 100]}))
        truths, named = [str(truth)], "3 values"
    elif problem == "second video missing":
        videos, truths, named = [video, str(tmp_path / "gone.mp4")], truths * 2, "gone.mp4"
    elif problem == "not a video":
        (tmp_path / "notes.mp4").write_text("not a video")
        videos, named = [str(tmp_path / "notes.mp4")], "notes.mp4"
    elif problem == "one frame":
        videos, truths, named = [str(write_video(tmp_path / "still.avi", 1))], None, "still.avi"
    elif problem == "out is a file":
        out, named = tmp_path / "taken", "taken"
        out.write_text("")
    argv = videos + ["--side-by-side", "--task", "Pick up the cube from the table.", "--rewarder", "scripted",
                     "--out", str(out), "--quiet", "--no-video"] + (["--ground-truth", *truths] if truths else [])
    with caplog.at_level(logging.INFO):
        assert _run_score(argv) == 2
    assert fake_backends == []  # refused before the (slow) rewarder was built
    assert named in _one_error(caplog)


def test_score_command_scores_a_truncated_video_and_says_so(tmp_path, fake_backends, caplog):
    video = tmp_path / "cut.avi"
    data = write_video(tmp_path / "whole.avi", 20).read_bytes()
    video.write_bytes(data[: int(len(data) * 0.7)])
    with caplog.at_level(logging.INFO):
        code = _run_score([str(video), "--task", "lift", "--rewarder", "scripted", "--out", str(tmp_path / "out"),
                           "--quiet", "--no-video"])
    assert code == 0
    decoded = json.loads((tmp_path / "out" / "cut.json").read_text())[0]["rewards"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "cut.avi" in r.getMessage()]
    assert len(warnings) == 1 and "20" in warnings[0] and str(len(decoded)) in warnings[0] and len(decoded) < 20


def _run_prompt(argv):
    parser = argparse.ArgumentParser()
    prompt_command.register(parser.add_subparsers())
    args = parser.parse_args(["prompt"] + argv)
    return args.func(args)


def test_prompt_command_refuses_an_out_path_that_is_a_file(official_lift, tmp_path, caplog):
    (tmp_path / "taken").write_text("")
    with caplog.at_level(logging.INFO):
        code = _run_prompt(["--task", "t", "--side-by-side", str(official_lift / "videos" / f"{EP14}.mp4"),
                            "--out", str(tmp_path / "taken")])
    assert code == 2 and "taken" in _one_error(caplog)


def test_prompt_command_refuses_a_one_frame_video(tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        code = _run_prompt(["--task", "t", "--external", str(write_video(tmp_path / "still.avi", 1)),
                            "--out", str(tmp_path / "out")])
    assert code == 2 and "still.avi" in _one_error(caplog)


def test_an_explicit_variant_is_passed_to_rewarders_that_take_one_per_call(ep14):
    external, wrist, *_ = ep14

    class LayoutAwareModel(ScriptedModel):
        variant = "full"

        def score(self, queries, variant=None):
            self.asked = getattr(self, "asked", []) + [variant]
            return super().score(queries)

    model = LayoutAwareModel(["<answer>1%</answer>"])
    record = score_video(model, external[:3], wrist[:3], "lift", variant="from_zero", progress=False)
    assert model.asked == ["from_zero", "from_zero"] and record.variant == "from_zero"
    model = LayoutAwareModel(["<answer>1%</answer>"])
    record = score_video(model, external[:3], None, "lift", progress=False)  # its own layout, no wrist camera
    assert model.asked == [None, None] and record.variant == "external_only"
