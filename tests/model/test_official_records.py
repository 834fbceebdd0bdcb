"""Our key frames, parsing, interpolation and record format reproduce the official SOLE-R1 model_outputs."""
import json
import re

import numpy as np
import pytest

from sole_r1_model.frames import interpolate_progress, key_frame_indices
from sole_r1_model.parsing import parse_answer
from sole_r1_model.records import read_ground_truth, read_records, write_records

OFFICIAL_KEYS_N25 = [0, 2, 5, 8, 10, 13, 16, 18, 21, 24]


@pytest.fixture(scope="module")
def official_files(official_lift):
    files = sorted((official_lift / "model_outputs").glob("*.json"))
    assert len(files) == 4, f"expected the 4 official Lift records in {official_lift}"
    return files


def _raw(path):
    return json.loads(path.read_text())[0]


def test_key_frames_of_official_records_are_the_linspace_indices(official_files):
    assert key_frame_indices(25) == OFFICIAL_KEYS_N25
    for path in official_files:
        raw = _raw(path)
        calls = [i for i, t in enumerate(raw["reasoning_traces"]) if t.strip()]
        assert [0] + calls == key_frame_indices(len(raw["rewards"])), path.name
        assert raw["reasoning_traces"][0] == "" and all(raw["reasoning_traces"][i] == " "
                                                        for i in range(25) if i not in OFFICIAL_KEYS_N25)


def test_parsing_every_official_trace_gives_the_official_key_frame_rewards(official_files):
    for path in official_files:
        raw = _raw(path)
        previous, parsed = 0.0, []
        for i in OFFICIAL_KEYS_N25[1:]:
            answer = parse_answer(raw["reasoning_traces"][i], previous)
            assert answer.valid, (path.name, i)
            assert answer.reasoning and "<think>" not in answer.reasoning
            parsed.append(answer.progress)
            previous = answer.progress
        assert parsed == [raw["rewards"][i] for i in OFFICIAL_KEYS_N25[1:]], path.name


def test_interpolating_parsed_answers_reproduces_official_per_frame_rewards(official_files):
    for path in official_files:
        raw = _raw(path)
        answers = [0.0] + [parse_answer(raw["reasoning_traces"][i], 0).progress for i in OFFICIAL_KEYS_N25[1:]]
        rewards = interpolate_progress(OFFICIAL_KEYS_N25, answers, 25)
        np.testing.assert_array_equal(rewards, np.asarray(raw["rewards"]), err_msg=path.name)


def test_official_model_fed_back_its_previous_answer(official_files):
    # Where a trace quotes the previous progress, it is the previous key frame's parsed answer: the official
    # decoder wrote that answer into the question, as our offline scorer does.
    quoted = re.compile(r"previous (?:task )?progress (?:was|of) (-?\d+)%")
    checked = 0
    for path in official_files:
        raw = _raw(path)
        for prev_key, key in zip(OFFICIAL_KEYS_N25, OFFICIAL_KEYS_N25[1:]):
            match = quoted.search(raw["reasoning_traces"][key])
            if match:
                assert float(match.group(1)) == raw["rewards"][prev_key], (path.name, key)
                checked += 1
    assert checked >= 20


def test_records_round_trip_to_identical_official_json(official_files, tmp_path):
    for path in official_files:
        records = read_records(path)
        assert len(records) == 1 and records[0].key_frame_indices == OFFICIAL_KEYS_N25
        out = write_records(records, tmp_path / path.name)
        assert json.loads(out.read_text()) == json.loads(path.read_text())
        assert list(json.loads(out.read_text())[0]) == list(_raw(path))  # same key order too


def test_ground_truth_files_load_with_one_value_per_frame(official_lift):
    for path in sorted((official_lift / "ground_truth").glob("*.json")):
        task, rewards = read_ground_truth(path)
        assert task == "Pick up the cube from the table." and len(rewards) == 25


def test_ground_truth_entries_without_traces_load_as_all_key_frames(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps([{"model": "Ground truth", "rewards": [0, 50, 100]}]))
    record = read_records(path)[0]
    assert record.key_frame_indices == [0, 1, 2] and record.reasoning_traces is None
    assert "reasoning_traces" not in record.to_official()


@pytest.mark.parametrize("content, message", [("not json", "not valid JSON"), ('[{"model": "x"}]', "rewards")])
def test_malformed_record_files_raise_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_records(path)


def test_missing_record_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        read_records(tmp_path / "nothing.json")
