"""`sole-r1 eval`: episode sets in both layouts, precomputed official outputs, scoring runs, bad inputs."""
import argparse
import json
import shutil

import cv2
import numpy as np
import pytest
from scipy import stats

from sole_r1_model.commands import eval as eval_command
from sole_r1_model.evaluation.episodes import discover_episodes
from sole_r1_model.evaluation.evaluate import score_episode
from sole_r1_model.records import read_records
from sole_r1_model.rewarder import ProgressResult, Rewarder

SUMMARY_KEYS = {"pearson_mean", "mae_mean", "voc_successful_mean", "auroc_final", "invalid_rate",
                "seconds_per_query", "perceived_success_rate", "episodes"}
EP14 = "robosuite_lift_episode_14_successful_max_reward_100"


def run_eval(*argv):
    """Run `sole-r1 eval ARGV` through its own parser; returns the exit code."""
    parser = argparse.ArgumentParser(prog="sole-r1")
    eval_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", *map(str, argv)])
    return args.func(args)


def strict_json(path):
    """Load JSON, failing on NaN/Infinity (the report must be strict JSON)."""
    return json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path} holds {c}"))


@pytest.fixture(scope="module")
def nested_set(tmp_path_factory, official_lift):
    """The 4 official Lift episodes copied into the official nested layout (<suite>/<task>/<label>/<stem>...)."""
    root = tmp_path_factory.mktemp("nested") / "test_videos"
    for truth in sorted((official_lift / "ground_truth").glob("*.json")):
        label = "unsuccessful" if "unsuccessful" in truth.stem else "successful"
        folder = root / "robosuite" / "lift" / label
        (folder / truth.stem).mkdir(parents=True)
        shutil.copy(truth, folder / truth.stem / "data.json")
        shutil.copy(official_lift / "videos" / f"{truth.stem}.mp4", folder / f"{truth.stem}.mp4")
    return root.parent


def independent_figures(official_lift):
    """Pearson / MAE / VOC / final progress per official episode, computed straight from the files."""
    out = {}
    for truth_file in sorted((official_lift / "ground_truth").glob("*.json")):
        truth = np.array(json.loads(truth_file.read_text())["ground-truth rewards"], float)
        pred = np.array(json.loads((official_lift / "model_outputs" / truth_file.name).read_text())[0]["rewards"])
        keys = np.linspace(0, len(truth) - 1, 10, dtype=int)[1:]  # scored key frames (frame 0 is not scored)
        out[truth_file.stem] = {"pearson": np.corrcoef(pred, truth)[0, 1], "mae": np.abs(pred - truth).mean(),
                                "voc": stats.spearmanr(pred[keys], keys)[0], "final": pred[-1],
                                "success": "_successful_" in truth_file.stem}
    return out


def test_both_layouts_give_the_same_episodes(nested_set, official_lift):
    nested, flat = discover_episodes(nested_set), discover_episodes(official_lift)
    assert [e.stem for e in nested] == [e.stem for e in flat] and len(flat) == 4
    for a, b in zip(nested, flat):
        assert (a.ground_truth, a.success, a.task, a.views) == (b.ground_truth, b.success, b.task, "side-by-side")
        assert a.video.name == b.video.name == f"{a.stem}.mp4"
    assert [e.success for e in flat] == [False, False, True, True]  # "unsuccessful" never reads as successful


def test_success_key_overrides_the_path_and_folders_above_the_set_do_not_count(tmp_path):
    root = tmp_path / "successful_runs" / "set"
    root.mkdir(parents=True)
    (root / "ep_a.json").write_text(json.dumps({"task description": "t", "ground-truth rewards": [0, 1]}))
    (root / "ep_b_successful.json").write_text(json.dumps({"task description": "t", "ground-truth rewards": [0, 1],
                                                           "success": False}))
    episodes = {e.stem: e for e in discover_episodes(root)}
    assert episodes["ep_a"].success is None and episodes["ep_b_successful"].success is False


def test_official_outputs_reproduce_independent_figures(tmp_path, official_lift):
    out = tmp_path / "report.json"
    assert run_eval("--predictions", official_lift / "model_outputs", "--ground-truth", official_lift / "ground_truth",
                    "--out", out, "--quiet") == 0
    report = strict_json(out)
    assert SUMMARY_KEYS <= set(report) and len(report["sections"]) == 1
    ref = independent_figures(official_lift)
    assert report["pearson_mean"] == pytest.approx(np.mean([r["pearson"] for r in ref.values()]), abs=1e-9)
    assert report["mae_mean"] == pytest.approx(np.mean([r["mae"] for r in ref.values()]), abs=1e-9)
    successful = [r for r in ref.values() if r["success"]]
    assert report["voc_successful_mean"] == pytest.approx(np.mean([r["voc"] for r in successful]), abs=1e-9)
    finals = [r["final"] for r in ref.values()]
    pairs = [(p, n) for p in finals[2:] for n in finals[:2]]  # stems sort failures (00, 12) before successes
    assert report["auroc_final"] == 1.0 == sum(p > n for p, n in pairs) / len(pairs)
    # The published reference for SOLE-R1-8B on these episodes.
    assert report["pearson_mean"] == pytest.approx(0.55, abs=0.01)
    assert report["mae_mean"] == pytest.approx(13.4, abs=0.1)
    assert report["invalid_rate"] == 0 and report["seconds_per_query"] is None
    rows = {row["stem"]: row for row in report["episodes"]}
    assert rows[EP14]["pearson"] == pytest.approx(ref[EP14]["pearson"]) and rows[EP14]["num_calls"] == 9
    assert (tmp_path / "report.md").read_text().count("| SOLE-R1 |") == 1
    assert (tmp_path / "report_curves.png").stat().st_size > 10_000


def test_two_prediction_folders_give_two_sections_side_by_side(tmp_path, official_lift, nested_set):
    assert run_eval(nested_set, "--predictions", official_lift / "model_outputs", "--predictions",
                    official_lift / "model_outputs", "--out", tmp_path, "--quiet", "--no-plot") == 0
    report = strict_json(tmp_path / "report.json")
    assert [s["rewarder"] for s in report["sections"]] == ["SOLE-R1", "SOLE-R1 (2)"]
    assert "pearson_mean" not in report  # several rewarders: the numbers live in their sections only
    assert report["sections"][0]["pearson_mean"] == report["sections"][1]["pearson_mean"]
    assert "SOLE-R1 (2) Pearson" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "report_curves.png").exists()


def test_oracle_run_scores_exactly_as_sole_r1_score(tmp_path, official_lift):
    from sole_r1_model.commands import score as score_command

    assert run_eval(official_lift, "--rewarder", "oracle", "--out", tmp_path / "eval", "--quiet") == 0
    report = strict_json(tmp_path / "eval" / "report.json")
    assert report["privileged"] is True and report["invalid_rate"] == 0 and report["seconds_per_query"] >= 0
    parser = argparse.ArgumentParser()
    score_command.register(parser.add_subparsers())
    args = parser.parse_args(["score", str(official_lift / "videos" / f"{EP14}.mp4"), "--side-by-side",
                              "--task", "Pick up the cube from the table.", "--rewarder", "oracle", "--ground-truth",
                              str(official_lift / "ground_truth" / f"{EP14}.json"), "--out", str(tmp_path / "score"),
                              "--no-video", "--quiet"])
    assert args.func(args) == 0
    saved = tmp_path / "eval" / "report_predictions" / "oracle" / f"{EP14}.json"
    assert json.loads(saved.read_text()) == json.loads((tmp_path / "score" / f"{EP14}.json").read_text())
    # With 10 key frames the oracle curve is the ground truth sampled and re-interpolated: check by hand.
    truth = np.array(json.loads((official_lift / "ground_truth" / f"{EP14}.json").read_text())["ground-truth rewards"])
    keys = np.linspace(0, 24, 10, dtype=int)
    curve = np.interp(np.arange(25), keys, np.r_[0, truth[keys[1:]]])
    row = next(r for r in report["episodes"] if r["stem"] == EP14)
    assert row["pearson"] == pytest.approx(np.corrcoef(curve, truth)[0, 1]) and row["final_progress"] == 100


class CameraProbe(Rewarder):
    """Records the mean colour of the current external and wrist frames of each query."""

    name = "probe"

    def __init__(self):
        self.seen = []

    def _score(self, queries):
        self.seen += [(q.external[2].mean(axis=(0, 1)), q.wrist[2].mean(axis=(0, 1))) for q in queries]
        return [ProgressResult(progress=10.0 * q.query_index) for q in queries]


def _write_video(path, bgr, frames=6):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 2, (32, 32))
    for _ in range(frames):
        writer.write(np.full((32, 32, 3), bgr, np.uint8))
    writer.release()


def test_two_camera_episodes_send_the_wrist_video_as_the_wrist_view(tmp_path):
    (tmp_path / "ep.json").write_text(json.dumps({"task description": "t", "ground-truth rewards": [0] * 6}))
    _write_video(tmp_path / "ep.mp4", (0, 0, 200))        # external: red
    _write_video(tmp_path / "ep_wrist.mp4", (200, 0, 0))  # wrist: blue
    [episode] = discover_episodes(tmp_path)
    assert episode.views == "two-camera" and episode.wrist.name == "ep_wrist.mp4"
    probe = CameraProbe()
    record, seconds = score_episode(probe, episode, num_key_frames=3)
    assert record.key_frame_indices == [0, 2, 5] and record.key_progress == [0, 10, 20] and seconds >= 0
    for external, wrist in probe.seen:
        assert external[0] > 150 > external[2] and wrist[2] > 150 > wrist[0]  # RGB: red outside, blue at the wrist


def test_tiny_rewarder_run_writes_a_complete_report(tmp_path, nested_set, tiny_model_path, monkeypatch):
    monkeypatch.setenv("SOLE_R1_TINY_MODEL", str(tiny_model_path))  # reuse the test cache's tiny checkpoint
    code = run_eval(nested_set, "--rewarder", "tiny", "--num-key-frames", "3", "--limit", "1", "--out",
                    tmp_path / "r" / "report.json", "--quiet")
    assert code == 0
    report = strict_json(tmp_path / "r" / "report.json")
    assert SUMMARY_KEYS <= set(report) and report["num_episodes"] == 1 and report["num_key_frames"] == 3
    assert 0 <= report["invalid_rate"] <= 1 and report["seconds_per_query"] > 0 and report["privileged"] is False
    [row] = report["episodes"]
    assert row["num_calls"] == 2 and row["key_frame_indices"] == [0, 12, 24]
    assert (tmp_path / "r" / "report.md").exists() and (tmp_path / "r" / "report_curves.png").exists()
    # The saved records re-evaluate to the same figures without the model.
    saved = tmp_path / "r" / "report_predictions" / "tiny"
    assert len(read_records(saved / f"{row['stem']}.json")) == 1
    assert run_eval(nested_set, "--predictions", saved, "--limit", "1", "--out", tmp_path / "again", "--quiet",
                    "--no-plot") == 0
    again = strict_json(tmp_path / "again" / "report.json")
    assert again["mae_mean"] == pytest.approx(report["mae_mean"]) and again["missing"] == []


@pytest.fixture
def no_rewarder_loading(monkeypatch):
    """Fail the test if any rewarder is built (inputs must be validated first)."""
    import sole_r1_model.rewarders as rewarders

    monkeypatch.setattr(rewarders, "make_rewarder", lambda spec: pytest.fail("a rewarder was built"))


def test_missing_episode_set_exits_2_with_a_message(tmp_path, capsys, no_rewarder_loading):
    assert run_eval(tmp_path / "nope", "--rewarder", "tiny", "--out", tmp_path) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "does not exist" in err and len(err.strip().splitlines()) == 1


def test_malformed_ground_truth_exits_2_naming_the_file(tmp_path, capsys, official_lift, no_rewarder_loading):
    root = tmp_path / "set"
    shutil.copytree(official_lift / "ground_truth", root)
    (root / "broken.json").write_text("{not json")
    assert run_eval(root, "--rewarder", "oracle", "--out", tmp_path / "out") == 2
    assert "broken.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_malformed_prediction_exits_2_naming_the_file(tmp_path, capsys, official_lift):
    preds = tmp_path / "preds"
    shutil.copytree(official_lift / "model_outputs", preds)
    (preds / f"{EP14}.json").write_text("[{\"rewards\": [1, 2]")
    assert run_eval(official_lift, "--predictions", preds, "--out", tmp_path) == 2
    assert f"{EP14}.json" in capsys.readouterr().err


def test_prediction_of_the_wrong_length_exits_2(tmp_path, capsys, official_lift):
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / f"{EP14}.json").write_text(json.dumps([{"model": "m", "rewards": [0, 50, 100]}]))
    assert run_eval(official_lift, "--predictions", preds, "--out", tmp_path) == 2
    assert "3 predicted frames" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--out", "x"], "no episode set"),
    (["{root}", "--out", "x"], "nothing to evaluate"),
    (["{root}", "--rewarder", "no_such_backend", "--out", "x"], "no_such_backend"),
    (["{root}", "--rewarder", "oracle", "--num-key-frames", "1", "--out", "x"], "--num-key-frames"),
    (["{root}", "--ground-truth", "{root}", "--rewarder", "oracle", "--out", "x"], "not both"),
])
def test_bad_use_exits_2_before_any_rewarder_is_built(argv, message, official_lift, capsys, no_rewarder_loading):
    assert run_eval(*[a.format(root=official_lift) for a in argv]) == 2
    assert message in capsys.readouterr().err


def test_videos_are_required_to_score(tmp_path, capsys, official_lift, no_rewarder_loading):
    assert run_eval(official_lift / "ground_truth", "--rewarder", "oracle", "--out", tmp_path) == 2
    assert "has no video" in capsys.readouterr().err


def test_the_sole_r1_cli_lists_eval():
    from sole_r1_ros.cli import build_parser

    args = build_parser().parse_args(["eval", "--predictions", "p", "--ground-truth", "g", "--out", "r.json"])
    assert args.func is eval_command.run
