"""`sole-r1 annotate`: rewarder progress per frame written into LeRobot datasets (v3.0 and v2.1), read back with
pyarrow, pandas and `datasets`; resuming after an interruption; nothing written when a step fails; clear errors."""
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sole_r1_model.__main__ import main
from sole_r1_model.frames import key_frame_indices
from sole_r1_model.lerobot_dataset import annotate, columns
from sole_r1_model.lerobot_dataset.format import read_dataset
from sole_r1_model.parsing import parse_answer
from sole_r1_model.rewarder import ProgressResult, Rewarder

STEP = "tests.model.test_annotate:StepRewarder"


class StepRewarder(Rewarder):
    """Answers previous + 10 with a line of reasoning; remembers every query (a rewarder of known progress)."""

    name = "step"
    queries: list = []
    interrupt_task = None       # a task whose first query raises KeyboardInterrupt (an interrupted run)

    def _score(self, queries):
        for query in queries:
            if query.task == StepRewarder.interrupt_task:
                raise KeyboardInterrupt
        StepRewarder.queries.extend(queries)
        return [ProgressResult(progress=q.previous_progress + 10, reasoning=f"step {q.query_index}",
                               raw_text=f"<think>step {q.query_index}</think><answer>{q.previous_progress + 10:.0f}%"
                                        "</answer>") for q in queries]


class SilentRewarder(Rewarder):
    """Answers the privileged progress (or 50 %) and writes no text: no reasoning column."""

    name = "silent"

    def _score(self, queries):
        return [ProgressResult(progress=50.0 if q.privileged_progress is None else q.privileged_progress)
                for q in queries]


@pytest.fixture(autouse=True)
def fresh_rewarders():
    StepRewarder.queries, StepRewarder.interrupt_task = [], None


def step_rewards(num_frames, num_key_frames):
    """What StepRewarder's answers become per frame: 10 % more per key frame, linear in between."""
    keys = key_frame_indices(num_frames, num_key_frames)
    return np.interp(np.arange(num_frames), keys, 10.0 * np.arange(len(keys))), keys


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """A LeRobot v3.0 dataset written by `sole-r1 export` from two recorded episodes, and what was recorded."""
    from sole_r1_ros.logic.bags import read_episode
    from sole_r1_ros.logic.lerobot_export import export_lerobot
    from tests.ros.bag_testlib import write_episode

    base = tmp_path_factory.mktemp("exported")
    sources = [write_episode(base / "bags" / "episode_00001", frames=25, episode_id=1),
               write_episode(base / "bags" / "episode_00002", frames=18, episode_id=2, task="Open the drawer.")]
    export_lerobot([read_episode(s.path) for s in sources], base / "ds", fps=10)
    return base / "ds", sources


@pytest.fixture
def v3_dataset(exported, tmp_path):
    shutil.copytree(exported[0], tmp_path / "ds")
    return tmp_path / "ds", exported[1]


def data_frame(root):
    return pd.concat([pd.read_parquet(p) for p in sorted((root / "data").rglob("*.parquet"))],
                     ignore_index=True).sort_values("index", ignore_index=True)


def test_annotate_writes_interpolated_progress_and_reasoning_into_a_v3_dataset(v3_dataset):
    root, sources = v3_dataset
    assert main(["annotate", str(root), "--rewarder", STEP, "quiet=tests.model.test_annotate:SilentRewarder",
                 "--key-frames", "5", "--quiet"]) == 0

    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["features"]["rewards_StepRewarder"] == {"dtype": "float32", "shape": [1], "names": None}
    assert info["features"]["reasoning_StepRewarder"] == {"dtype": "string", "shape": [1], "names": None}
    assert "rewards_quiet" in info["features"] and "reasoning_quiet" not in info["features"]  # no text, no column
    frames = data_frame(root)
    assert str(pq.read_schema(next((root / "data").rglob("*.parquet"))).field("rewards_StepRewarder").type) == "float"
    for episode, source in enumerate(sources):
        rows = frames[frames["episode_index"] == episode].sort_values("frame_index")
        n = len(source.shoulder)
        expected, keys = step_rewards(n, 5)
        assert len(rows) == n
        assert np.allclose(rows["rewards_StepRewarder"], expected, atol=1e-4)
        assert np.allclose(rows["rewards_quiet"], np.interp(np.arange(n), keys, [0] + [50] * (len(keys) - 1)))
        traces = rows["reasoning_StepRewarder"].tolist()
        assert traces[0] == "" and all(traces[i] == " " for i in range(n) if i not in keys)
        assert [parse_answer(traces[k], 0.0).reasoning for k in keys[1:]] == [f"step {i}" for i in range(1, len(keys))]

    # The queries saw the right cameras at the key frames, each episode's own task, the previous answer fed back.
    seen = StepRewarder.queries
    assert [q.task for q in seen] == ["Reach the red goal."] * 4 + ["Open the drawer."] * 4
    assert [q.previous_progress for q in seen[:4]] == [0, 10, 20, 30]
    for query, key in zip(seen[:4], key_frame_indices(25, 5)[1:]):
        for got, recorded in ((query.external[2], sources[0].shoulder[key]), (query.wrist[2], sources[0].wrist[key])):
            error = np.abs(got.astype(int) - recorded.astype(int)).mean()
            assert error < 6.0, f"frame {key}: {error:.1f} levels from the recorded frame (H.264 keeps it close)"

    # Stats where v3.0 keeps them: meta/stats.json and per-episode columns of the episodes table.
    stats = json.loads((root / "meta" / "stats.json").read_text())["rewards_StepRewarder"]
    everything = np.concatenate([step_rewards(len(s.shoulder), 5)[0] for s in sources])
    assert stats["count"] == [43] and np.isclose(stats["max"][0], 40)
    assert np.isclose(stats["mean"][0], everything.mean())
    assert "reasoning_StepRewarder" not in json.loads((root / "meta" / "stats.json").read_text())
    episodes = pd.read_parquet(next((root / "meta" / "episodes").rglob("*.parquet")))
    assert [list(v) for v in episodes["stats/rewards_StepRewarder/count"]] == [[25], [18]]
    assert np.isclose(episodes["stats/rewards_StepRewarder/mean"][1][0], step_rewards(18, 5)[0].mean())

    # The dataset still reads as before, with the new columns, in our reader and in `datasets`.
    assert len(read_dataset(root).frames) == 43 and not (root / annotate.CACHE_DIR).exists()
    import datasets

    loaded = datasets.load_dataset("parquet", data_files=str(root / "data" / "*" / "*.parquet"), split="train")
    assert loaded.features["rewards_StepRewarder"].dtype == "float32"
    assert np.allclose(sorted(loaded["rewards_StepRewarder"])[-1], 40.0)


def test_annotate_with_the_tiny_model_writes_its_parsed_answers_per_frame(v3_dataset, tiny_model_path, monkeypatch):
    monkeypatch.setenv("SOLE_R1_TINY_MODEL", str(tiny_model_path))
    root, sources = v3_dataset
    assert main(["annotate", str(root), "--rewarder", "tiny", "--key-frames", "3", "--quiet"]) == 0
    frames = data_frame(root)
    for episode, source in enumerate(sources):
        rows = frames[frames["episode_index"] == episode].sort_values("frame_index")
        n = len(source.shoulder)
        keys = key_frame_indices(n, 3)
        traces = rows["reasoning_tiny"].tolist()
        progress = [0.0]
        for k in keys[1:]:  # each key frame's completion, parsed as the scorer parses it (invalid: carried)
            progress.append(parse_answer(traces[k], progress[-1]).progress)
        assert np.allclose(rows["rewards_tiny"], np.interp(np.arange(n), keys, progress), atol=1e-3)


def write_v21_dataset(root, lengths=(12, 9), tasks=("Pick up the cube.", "Open the drawer.")):
    """A LeRobot v2.1 dataset: one data file (written by `datasets`, PNG image column) and one video per episode."""
    import datasets
    import imageio.v2 as imageio
    from PIL import Image

    from tests.ros.bag_testlib import scene

    rng = np.random.default_rng(7)
    top, wrist, start = {}, {}, 0
    episodes_jsonl, stats_jsonl = [], []
    features = datasets.Features({
        "observation.images.wrist": datasets.Image(), "observation.state": datasets.Sequence(
            datasets.Value("float32"), length=2), "timestamp": datasets.Value("float32"),
        "frame_index": datasets.Value("int64"), "episode_index": datasets.Value("int64"),
        "index": datasets.Value("int64"), "task_index": datasets.Value("int64")})
    for e, n in enumerate(lengths):
        top[e] = [scene((32, 40), k + 5 * e, rng) for k in range(n)]
        wrist[e] = [rng.integers(0, 255, (24, 24, 3), dtype=np.uint8) for _ in range(n)]
        video = root / f"videos/chunk-000/observation.images.top/episode_{e:06d}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        with imageio.get_writer(str(video), format="FFMPEG", fps=10, codec="libx264", macro_block_size=1,
                                pixelformat="yuv420p", ffmpeg_log_level="error",
                                output_params=["-crf", "18", "-g", "2"]) as writer:
            for frame in top[e]:
                writer.append_data(frame)
        table = datasets.Dataset.from_dict({
            "observation.images.wrist": [Image.fromarray(f) for f in wrist[e]],
            "observation.state": rng.normal(size=(n, 2)).astype(np.float32).tolist(),
            "timestamp": (np.arange(n) / 10.0).tolist(), "frame_index": list(range(n)), "episode_index": [e] * n,
            "index": list(range(start, start + n)), "task_index": [e] * n}, features=features)
        path = root / f"data/chunk-000/episode_{e:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(path)
        start += n
        episodes_jsonl.append({"episode_index": e, "tasks": [tasks[e]], "length": n})
        stats_jsonl.append({"episode_index": e, "stats": {"observation.state": {
            "min": [0, 0], "max": [1, 1], "mean": [0, 0], "std": [1, 1], "count": [n], "q01": [0, 0], "q99": [1, 1]}}})
    image = {"dtype": "image", "shape": [24, 24, 3], "names": ["height", "width", "channels"]}
    info = {"codebase_version": "v2.1", "robot_type": "so101", "total_episodes": len(lengths),
            "total_frames": start, "total_tasks": len(tasks), "total_videos": len(lengths), "total_chunks": 1,
            "chunks_size": 1000, "fps": 10, "splits": {"train": f"0:{len(lengths)}"},
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
            "features": {"observation.images.top": {"dtype": "video", "shape": [32, 40, 3],
                                                    "names": ["height", "width", "channels"],
                                                    "info": {"video.fps": 10, "video.codec": "h264"}},
                         "observation.images.wrist": image,
                         "observation.state": {"dtype": "float32", "shape": [2], "names": None},
                         **{k: {"dtype": "int64", "shape": [1], "names": None}
                            for k in ("frame_index", "episode_index", "index", "task_index")},
                         "timestamp": {"dtype": "float32", "shape": [1], "names": None}}}
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
    (root / "meta" / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in episodes_jsonl))
    (root / "meta" / "episodes_stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in stats_jsonl))
    (root / "meta" / "tasks.jsonl").write_text("".join(json.dumps({"task_index": i, "task": t}) + "\n"
                                                       for i, t in enumerate(tasks)))
    return top, wrist


def snapshot(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and annotate.CACHE_DIR not in p.parts}


def test_a_v21_dataset_is_annotated_in_its_layout_and_an_interrupted_run_resumes(tmp_path):
    root = tmp_path / "v21"
    top, wrist = write_v21_dataset(root)
    before = snapshot(root)
    spec = annotate.RewarderSpec("step", STEP)
    options = annotate.AnnotateOptions(num_key_frames=4, progress=False)
    StepRewarder.interrupt_task = "Open the drawer."   # episode 1: the run is interrupted (Ctrl-C) mid-dataset
    assert main(["annotate", str(root), "--rewarder", f"step={STEP}", "--key-frames", "4", "--quiet"]) == 130
    assert snapshot(root) == before  # nothing of the dataset changed ...
    assert (root / annotate.CACHE_DIR / "step.jsonl").is_file()  # ... but episode 0's answers are kept
    assert len(StepRewarder.queries) == 3

    StepRewarder.interrupt_task, StepRewarder.queries = None, []
    [summary] = annotate.annotate_dataset(root, [spec], options)
    assert (summary.episodes, summary.resumed, summary.calls) == (2, 1, 6)
    assert [q.task for q in StepRewarder.queries] == ["Open the drawer."] * 3  # only the missing episode scored
    for key, query in zip(key_frame_indices(9, 4)[1:], StepRewarder.queries):  # wrist PNGs decode exactly
        assert np.array_equal(query.wrist[2], wrist[1][key])
        assert np.abs(query.external[2].astype(int) - top[1][key]).mean() < 6.0  # the video frame, H.264-close

    for e, n in enumerate((12, 9)):
        table = pq.read_table(root / f"data/chunk-000/episode_{e:06d}.parquet")
        assert np.allclose(table.column("rewards_step").to_numpy(), step_rewards(n, 4)[0], atol=1e-4)
        assert table.column("reasoning_step").to_pylist()[0] == ""
    import datasets

    loaded = datasets.load_dataset("parquet", data_files=str(root / "data/*/*.parquet"), split="train")
    assert isinstance(loaded.features["observation.images.wrist"], datasets.Image)  # the image column is intact
    assert loaded.features["reasoning_step"].dtype == "string" and len(loaded["rewards_step"]) == 21
    stats = [json.loads(line) for line in (root / "meta" / "episodes_stats.jsonl").read_text().splitlines()]
    assert set(stats[1]["stats"]["rewards_step"]) == {"min", "max", "mean", "std", "count", "q01", "q99"}
    assert stats[1]["stats"]["rewards_step"]["max"] == [30.0] and stats[1]["stats"]["rewards_step"]["count"] == [9]
    info = json.loads((root / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v2.1" and info["features"]["rewards_step"]["dtype"] == "float32"
    assert not (root / "meta" / "stats.json").exists() and not (root / annotate.CACHE_DIR).exists()


def test_a_failure_while_writing_leaves_the_dataset_unchanged(tmp_path, monkeypatch):
    root = tmp_path / "v21"
    write_v21_dataset(root)
    before = snapshot(root)

    def broken(*_):
        raise OSError("disk full")

    monkeypatch.setattr(columns, "_write_stats", broken)  # after the data files' new versions are written
    with pytest.raises(OSError, match="disk full"):
        annotate.annotate_dataset(root, [annotate.RewarderSpec("step", STEP)],
                                  annotate.AnnotateOptions(num_key_frames=3, progress=False))
    assert snapshot(root) == before
    assert not list(root.rglob(f"*{columns.TMP_SUFFIX}"))


def test_external_only_and_privileged_column_options(v3_dataset):
    root, sources = v3_dataset
    assert main(["annotate", str(root), "--rewarder", "oracle", "--privileged-column", "progress.privileged",
                 "--external", "shoulder", "--wrist", "none", "--key-frames", "4", "--quiet"]) == 0
    frames = data_frame(root)
    rows = frames[frames["episode_index"] == 0]
    keys = key_frame_indices(25, 4)
    truth = sources[0].privileged
    assert np.allclose(rows["rewards_oracle"], np.interp(np.arange(25), keys, [0.0] + [truth[k] for k in keys[1:]]),
                       atol=1e-3)
    assert "PRIVILEGED" in rows["reasoning_oracle"].iloc[keys[1]]


@pytest.mark.parametrize("arguments, message", [
    (["--rewarder", STEP, "--external", "side"], "no camera 'side'"),
    (["--rewarder", "no-such-backend"], "neither a backend"),
    (["--rewarder", STEP, "--privileged-column", "nope"], "no column 'nope'"),
    (["--rewarder", "a=" + STEP, "a=tiny"], "distinct label"),
])
def test_bad_arguments_are_one_error_and_exit_code_2(v3_dataset, arguments, message, caplog):
    root, _ = v3_dataset
    before = snapshot(root)
    assert main(["annotate", str(root), "--quiet", *arguments]) == 2
    assert message in caplog.text
    assert snapshot(root) == before


def test_missing_dataset_and_existing_columns_are_refused(v3_dataset, tmp_path, caplog):
    from sole_r1_ros.cli import main as sole_r1  # the `sole-r1` command lists annotate too

    assert sole_r1(["annotate", str(tmp_path / "nowhere"), "--rewarder", STEP]) == 2
    assert "no such folder" in caplog.text
    root, _ = v3_dataset
    assert main(["annotate", str(root), "--rewarder", STEP, "--key-frames", "2", "--quiet"]) == 0
    assert main(["annotate", str(root), "--rewarder", STEP, "--key-frames", "2", "--quiet"]) == 2
    assert "--overwrite" in caplog.text
    assert main(["annotate", str(root), "--rewarder", STEP, "--key-frames", "3", "--overwrite", "--quiet"]) == 0
    assert np.isclose(data_frame(root)["rewards_StepRewarder"].max(), 20.0)


def test_labels_and_default_cameras():
    assert annotate.RewarderSpec.parse("tiny") == annotate.RewarderSpec("tiny", "tiny")
    assert annotate.RewarderSpec.parse("config/rewarders/openai.yaml").label == "openai"
    assert annotate.RewarderSpec.parse("gpt=config/rewarders/openai.yaml").label == "gpt"
    assert annotate.RewarderSpec.parse(STEP).label == "StepRewarder"
    with pytest.raises(ValueError, match="label"):
        annotate.RewarderSpec.parse("bad label=tiny")
    from sole_r1_model.lerobot_dataset.cameras import choose_cameras

    def info(*keys):
        return {"features": {k: {"dtype": "video"} for k in keys} | {"action": {"dtype": "float32"}}}

    assert choose_cameras(info("observation.images.top", "observation.images.wrist")) == \
        ("observation.images.top", "observation.images.wrist")
    assert choose_cameras(info("observation.images.gripper_cam", "observation.images.front")) == \
        ("observation.images.front", "observation.images.gripper_cam")
    assert choose_cameras(info("observation.images.front")) == ("observation.images.front", None)
    assert choose_cameras(info("observation.images.wrist")) == ("observation.images.wrist", None)
    assert choose_cameras(info("a.top", "a.side", "a.wrist"), external="side") == ("a.side", "a.wrist")
    with pytest.raises(ValueError, match="cameras .* are: a.top, a.side"):
        choose_cameras(info("a.top", "a.side"), wrist="hand")
