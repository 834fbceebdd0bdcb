"""The `roboreward` backend on the tiny Qwen3-VL (RoboReward's base family): model-card prompt, greedy `generate`,
"ANSWER: <1-5>" parsed and mapped to (score - 1) * 25 %, malformed answers invalid and counted.

Completions are forced token by token (generate's prefix_allowed_tokens_fn) so the real decode path writes text
chosen here; the expected progress of each forced text is written out by hand.
"""
import dataclasses
import re

import pytest
import yaml

from sole_r1_model.rewarders import make_rewarder
from sole_r1_model.rewarders.config import RoboRewardConfig, resolve_spec
from sole_r1_model.rewarders.roboreward import RoboRewardRewarder, parse_score, score_to_progress

from .forcing_testlib import forcing

SMALL_IMAGES = {"size": {"shortest_edge": 64 * 64, "longest_edge": 128 * 128}}  # few image tokens: fast on CPU
TASK_NUMBER = re.compile(r"Task: Reach target (\d+)")
# The teetone/RoboReward-8B model card's prompt, copied here (huggingface.co/teetone/RoboReward-8B, "Inference").
MODEL_CARD_PROMPT = """Given the task, assign a discrete progress score reward (1,2,3,4,5) for the robot in the video in the format: ANSWER: <score>
Rubric for end-of-episode progress (judge only the final state without time limits):
1 - No Success: Final state shows no goal-relevant change for the command.
2 - Minimal Progress: Final state shows a small but insufficient change toward the goal.
3 - Partial Completion: The final state shows good progress toward the goal but violates more than one requirement or a major requirement.
4 - Near Completion: Final state is correct in region and intent but misses a single minor requirement.
5 - Perfect Completion: Final state satisfies all requirements.

Task: """  # noqa: E501 -- kept verbatim


@pytest.fixture(scope="module")
def config(tiny_model_path):
    """RoboReward's defaults on the tiny model, on the CPU."""
    return RoboRewardConfig(model=str(tiny_model_path), device="cpu", image_processor_overrides=SMALL_IMAGES)


@pytest.fixture(scope="module")
def tokenizer(config):
    """The tiny model's tokenizer."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(config.model)


def forced_rewarder(config, tokenizer, completions, **options):
    """A rewarder whose model writes completions[n] for the query whose task is "Reach target n"."""
    def completion(prompt):
        return completions[int(TASK_NUMBER.search(prompt).group(1))]

    return RoboRewardRewarder(dataclasses.replace(config, **options),
                              generate_overrides={"prefix_allowed_tokens_fn": forcing(tokenizer, completion)})


# ----------------------------------------------------------------------------------------------- the method
def test_prompt_is_the_model_card_prompt_after_the_frames(config, make_query):
    with RoboRewardRewarder(config) as rewarder:
        text = rewarder.prompt_text(make_query(task="Open the drawer."))
    assert text.endswith(MODEL_CARD_PROMPT + "Open the drawer.<|im_end|>\n<|im_start|>assistant\n")
    assert text.count("<|image_pad|>") == 3 and text.index("<|image_pad|>") < text.index("Given the task")


@pytest.mark.parametrize("score, progress", [(1, 0.0), (2, 25.0), (3, 50.0), (4, 75.0), (5, 100.0)])
def test_score_maps_to_progress(score, progress):
    assert score_to_progress(score) == progress


@pytest.mark.parametrize("text, score", [("ANSWER: 4", 4), ("answer : 2\n", 2), ("The final state...\nANSWER:5", 5),
                                         ("ANSWER: 6", None), ("ANSWER: 45", None), ("The reward is 3", None),
                                         ("", None)])
def test_only_the_documented_answer_is_a_score(text, score):
    assert parse_score(text) == score


def test_forced_answers_are_scored_in_query_order_across_batches(config, tokenizer, make_query):
    completions = {4: "ANSWER: 4", 1: "ANSWER: 1", 5: "ANSWER: 5"}
    with forced_rewarder(config, tokenizer, completions, max_batch_size=2) as rewarder:
        queries = [make_query(task=f"Reach target {n}", previous=10.0, t=1 + i) for i, n in enumerate(completions)]
        batch = rewarder.score(queries)  # generate calls of 2 and 1 queries
        singles = [rewarder.score([query])[0] for query in queries]
    assert [r.progress for r in batch] == [75.0, 0.0, 100.0]
    assert [r.raw_text for r in batch] == ["ANSWER: 4", "ANSWER: 1", "ANSWER: 5"]
    assert all(r.valid and r.rewarder == "roboreward" and r.latency > 0 for r in batch)
    assert [(r.progress, r.raw_text) for r in singles] == [(r.progress, r.raw_text) for r in batch]


def test_malformed_answers_are_invalid_counted_and_carry_progress_forward(config, tokenizer, make_query):
    completions = {1: "Score: 4 of 5", 2: "ANSWER: 6", 3: "ANSWER: 45", 4: "answer: 2"}
    with forced_rewarder(config, tokenizer, completions) as rewarder:
        results = rewarder.score([make_query(task=f"Reach target {n}", previous=10.0 * n) for n in completions])
        assert [r.valid for r in results] == [False, False, False, True]
        assert [r.progress for r in results] == [10.0, 20.0, 30.0, 25.0]
        assert all("ANSWER" in r.error for r in results[:3]) and results[3].error == ""
        assert [r.raw_text for r in results] == list(completions.values())
        assert (rewarder.stats["queries"], rewarder.stats["invalid"]) == (4, 3)


def test_unforced_model_gives_invalid_results_not_exceptions(config, tmp_path, make_query):
    spec = tmp_path / "roboreward.yaml"  # what a user writes to run RoboReward on another checkpoint
    spec.write_text(yaml.safe_dump({"backend": "roboreward", "model": config.model, "device": "cpu",
                                    "image_processor_overrides": SMALL_IMAGES}))
    with make_rewarder(spec) as rewarder:
        assert isinstance(rewarder, RoboRewardRewarder) and rewarder.generation_kwargs()["do_sample"] is False
        queries = [make_query(previous=12.0), make_query(task="Open the drawer", previous=-30.0, t=2)]
        results = rewarder.score(queries)
        for query, result in zip(queries, results):  # random weights: whatever it wrote, judged by its own text
            answer = re.search(r"\bANSWER\s*:\s*([1-5])\b", result.raw_text, re.IGNORECASE)
            assert result.valid == bool(answer)
            assert result.progress == ((int(answer.group(1)) - 1) * 25.0 if answer else query.previous_progress)
        assert rewarder.stats["invalid"] == sum(not r.valid for r in results)


def test_missing_camera_is_an_invalid_counted_result(config, make_query):
    with RoboRewardRewarder(dataclasses.replace(config, camera="wrist", max_new_tokens=2)) as rewarder:
        [result] = rewarder.score([make_query(previous=7.0, wrist=False)])
        assert not result.valid and result.progress == 7.0 and "wrist" in result.error
        assert (rewarder.stats["invalid"], rewarder.stats["errors"]) == (1, 1)


# -------------------------------------------------------------------------------------------- configuration
def test_unknown_key_is_named_in_the_error():
    with pytest.raises(ValueError, match="unknown key 'variant' for rewarder backend 'roboreward'"):
        make_rewarder({"backend": "roboreward", "variant": "full"})


@pytest.mark.parametrize("options, field", [({"camera": "top"}, "camera"), ({"decode": "beam"}, "decode"),
                                            ({"top_p": 1.5}, "top_p"), ({"max_new_tokens": 0}, "max_new_tokens"),
                                            ({"device": "tpu"}, "device")])
def test_invalid_values_are_rejected_naming_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        RoboRewardConfig(**options)


def test_shipped_yaml_restates_every_default(repo_root):
    path = repo_root / "config" / "rewarders" / "roboreward.yaml"
    backend, config = resolve_spec(path)
    assert (backend, config) == ("roboreward", RoboRewardConfig()) == resolve_spec("roboreward")
    assert set(yaml.safe_load(path.read_text())) - {"backend"} == {f.name for f in dataclasses.fields(config)}
    assert (config.model, config.temperature, config.max_new_tokens) == ("teetone/RoboReward-8B", 0.0, 16)
