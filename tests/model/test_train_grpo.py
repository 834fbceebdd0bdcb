"""`sole-r1 train grpo`: the verifiable rewards on hand-written completions, and a 2-step run the rewarder loads."""
import json

import pytest
import yaml

from sole_r1_model.training.rewards import (completion_text, format_reward, is_well_formed, length_penalty,
                                            progress_accuracy_reward, reward_functions)
from tests.model.train_testlib import query_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def chat(text: str) -> list[dict]:
    """A completion as TRL passes it for conversational data."""
    return [{"role": "assistant", "content": text}]


GOOD = "<think>the cube is lifted</think><answer>40%</answer>"


@pytest.mark.parametrize("text, expected", [
    (GOOD, 1.0),
    ("  <think>lifted</think>\n<answer> -20 </answer>\n", 1.0),   # whitespace and negatives are fine
    ("<think>lifted</think><answer>40</answer>", 1.0),            # the parser drops '%' anyway
    ("<answer>40%</answer>", 0.0),                                # no reasoning
    ("<think> </think><answer>40%</answer>", 0.0),                # empty reasoning
    ("<think>lifted<answer>40%</answer>", 0.0),                   # think never closed
    ("<think>lifted</think><answer>about 40%</answer>", 0.0),     # not an integer
    ("<think>lifted</think><answer>40%</answer", 0.0),            # answer cut before '>'
    ("<think>lifted</think><answer>40%</answer> and more", 0.0),  # text after the answer
    ("<answer>40%</answer><think>lifted</think>", 0.0),           # wrong order
    ("40%", 0.0),
])
def test_format_reward(text, expected):
    assert format_reward([chat(text)]) == [expected]
    assert is_well_formed(text) is bool(expected)


def test_accuracy_reward_scores_distance_to_the_label():
    completions = [chat(GOOD), chat(GOOD.replace("40", "90")), chat(GOOD.replace("40", "-10")),
                   chat(GOOD.replace("40", "-100")), chat("no answer"), chat(GOOD.replace("40", "44"))]
    rewards = progress_accuracy_reward(completions, progress=[40] * 6)
    assert rewards == pytest.approx([1.0, 0.5, 0.5, 0.0, 0.0, 0.96])


def test_accuracy_tolerance_band_and_loose_answers():
    # Within the band is exact; beyond it the error counts from the band's edge.
    assert progress_accuracy_reward([chat(GOOD.replace("40", "44")), chat(GOOD.replace("40", "60"))],
                                    progress=[40, 40], tolerance=5) == pytest.approx([1.0, 0.85])
    # Accuracy needs a readable answer only; the format reward is what asks for the reasoning.
    assert progress_accuracy_reward([chat("<answer>40%</answer>")], progress=[40]) == [1.0]
    assert progress_accuracy_reward([chat(GOOD.replace("40", "250"))], progress=[100]) == [1.0]  # clamped


def test_rewards_take_dataset_columns_as_keyword_lists():
    # GRPOTrainer passes every extra column of the batch (progress, task, ...) and its own extras as kwargs.
    kwargs = {"progress": [40, 0], "previous_progress": [20, 0], "task": ["a", "b"], "trainer_state": None,
              "completion_ids": [[1] * 10, [1] * 400]}
    completions = [chat(GOOD), [{"role": "assistant", "content": [{"type": "text", "text": GOOD}]}]]
    assert format_reward(completions, **kwargs) == [1.0, 1.0]
    assert progress_accuracy_reward(completions, **kwargs) == pytest.approx([1.0, 0.6])
    assert length_penalty(completions, **kwargs) == pytest.approx([0.0, -1.0])
    assert length_penalty(completions, completion_ids=[[1] * 200], target_tokens=100) == [-1.0]
    assert length_penalty(completions, completion_ids=[[1] * 150], target_tokens=100) == [-0.5]
    assert completion_text(GOOD) == completion_text(chat(GOOD)) == GOOD


def test_reward_functions_leave_out_zero_weights():
    functions, weights = reward_functions(format_weight=0.2, accuracy_weight=1.0, length_weight=0.0)
    assert weights == [0.2, 1.0] and len(functions) == 2
    with pytest.raises(ValueError):
        reward_functions(0, 0, 0, 0)


def test_two_steps_export_a_checkpoint_the_rewarder_loads(tiny_model_path, mini_dataset, tmp_path):  # noqa: F811
    from sole_r1_model.commands.train import recipe_path
    from sole_r1_model.rewarders import make_rewarder
    from sole_r1_model.training.grpo import train_grpo
    from sole_r1_model.training.recipe import load_recipe

    recipe = load_recipe(recipe_path("grpo_small"), (
        f"model.path={json.dumps(str(tiny_model_path))}", f"data.train={json.dumps([str(mini_dataset)])}",
        f"output_dir={json.dumps(str(tmp_path / 'grpo'))}", "model.image_max_pixels=24576",
        "model.image_min_pixels=4096", "schedule.max_steps=2", "schedule.logging_steps=1", "schedule.precision=fp32",
        "schedule.report_to=[]", "schedule.progress_bar=false", "optim.per_device_batch_size=4",
        "grpo.num_generations=4", "grpo.max_completion_length=12", "grpo.length_weight=0.1"))
    result = train_grpo(recipe)
    assert result.global_step == 2
    logged = {key for record in result.log_history for key in record}
    for name in ("format_reward", "progress_accuracy_reward", "length_penalty"):
        assert f"rewards/{name}/mean" in logged
    spec = {**yaml.safe_load((result.final_dir / "rewarder.yaml").read_text()), "model": str(result.final_dir)}
    with make_rewarder({**spec, "device": "cpu", "max_new_tokens": 8, "seed": 0}) as rewarder:
        [scored] = rewarder.score([query_for(3)])
    assert scored.rewarder == "sole_r1"


def test_group_size_must_divide_the_batch():
    from sole_r1_model.training.grpo import check_batch
    from sole_r1_model.training.recipe import from_dict

    recipe = from_dict({"optim": {"per_device_batch_size": 6}, "grpo": {"num_generations": 4}})
    with pytest.raises(ValueError, match="multiple of grpo.num_generations"):
        check_batch(recipe, num_processes=1)
    check_batch(recipe, num_processes=2)
