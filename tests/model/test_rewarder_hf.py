"""The `sole_r1` backend on the tiny Qwen3-VL: real processor, chat template, batched `generate`, parsing."""
import json
import re
import shutil

import pytest

from sole_r1_model.prompt import SYSTEM_PROMPT
from sole_r1_model.rewarders.config import HFRewarderConfig
from sole_r1_model.rewarders.hf import HFRewarder

TASK_NUMBER = re.compile(r"task number (-?\d+)")


def forcing_answers(tokenizer, answer_for_prompt):
    """A prefix_allowed_tokens_fn that makes the model write `<think>..</think><answer>N%</answer>` then stop.

    N comes from `answer_for_prompt(prompt_text)`, so each row's answer depends on its own prompt and a wrong
    pairing of prompts and results would show.
    """
    start_ids = tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def allowed(batch_id, input_ids):
        ids = input_ids.tolist()
        begin = max(i for i in range(len(ids) - len(start_ids) + 1) if ids[i:i + len(start_ids)] == start_ids)
        prompt_end = begin + len(start_ids)
        answer = answer_for_prompt(tokenizer.decode(ids[:prompt_end]))
        target = tokenizer.encode(f"<think>cube lifted</think><answer>{answer}%</answer>",
                                  add_special_tokens=False) + [eos]
        done = len(ids) - prompt_end
        return [target[done]] if done < len(target) else [eos]

    return allowed


def test_batch_of_two_gives_two_results_without_exceptions(tiny_rewarder, make_query):
    queries = [make_query(previous=12.0), make_query(task="Open the drawer", previous=-30.0, wrist=False, t=2)]
    results = tiny_rewarder.score(queries)
    assert len(results) == 2
    for query, result in zip(queries, results):
        assert result.rewarder == "sole_r1" and not result.privileged
        assert isinstance(result.raw_text, str) and result.latency > 0
        if not result.valid:  # random weights: garbage text -> the previous progress carried forward
            assert result.progress == query.previous_progress
            assert result.error


def test_forced_answer_is_parsed_through_the_real_decode_path(tiny_model_path, make_query):
    config = HFRewarderConfig(model=str(tiny_model_path), device="cpu", max_new_tokens=24, seed=0)
    probe = HFRewarder(config)
    rewarder = HFRewarder(config, generate_overrides={
        "prefix_allowed_tokens_fn": forcing_answers(probe.tokenizer, lambda prompt: 42)})
    [result] = rewarder.score([make_query(previous=10.0)])
    assert result.valid, result.error
    assert result.progress == 42.0
    assert result.reasoning == "cube lifted"
    assert result.raw_text == "<think>cube lifted</think><answer>42%</answer>"


def test_results_stay_in_query_order_across_split_batches(tiny_model_path, make_query):
    config = HFRewarderConfig(model=str(tiny_model_path), device="cpu", max_new_tokens=24, max_batch_size=2)
    probe = HFRewarder(config)

    def answer(prompt):
        return int(TASK_NUMBER.search(prompt).group(1))

    rewarder = HFRewarder(config, generate_overrides={"prefix_allowed_tokens_fn": forcing_answers(probe.tokenizer,
                                                                                                  answer)})
    numbers = [7, 250, -3]  # 250 must come back clamped to 100, as the official parser does
    results = rewarder.score([make_query(task=f"Reach task number {n}", wrist=n != -3) for n in numbers])
    assert [r.progress for r in results] == [7.0, 100.0, -3.0]
    assert all(r.valid for r in results)


def test_prompt_text_is_the_chat_template_with_previous_progress(tiny_rewarder, make_query):
    text = tiny_rewarder.prompt_text(make_query(previous=37.4))
    assert text.startswith("<|im_start|>system\n" + SYSTEM_PROMPT + "<|im_end|>\n<|im_start|>user\n")
    assert "The task progress for the previous timestep is 37%." in text
    assert text.endswith("<|im_start|>assistant\n")
    from_zero = tiny_rewarder.prompt_text(make_query(previous=37.4), variant="from_zero")
    assert "previous timestep is" not in from_zero


def test_wrist_only_query_without_wrist_frames_is_an_invalid_result(tiny_rewarder, make_query):
    [result] = tiny_rewarder.score([make_query(previous=5.0, wrist=False)], variant="wrist_only")
    assert not result.valid and result.progress == 5.0
    assert "wrist" in result.error


def test_greedy_generation_is_deterministic(tiny_rewarder, make_query):
    query = make_query()
    first = tiny_rewarder.score([query], temperature=0.0)[0].raw_text
    second = tiny_rewarder.score([query], temperature=0.0)[0].raw_text
    assert first == second


def test_unknown_variant_is_a_clear_error(tiny_rewarder, make_query):
    with pytest.raises(ValueError, match="unknown prompt variant"):
        tiny_rewarder.score([make_query()], variant="sideways")


def test_missing_checkpoints_are_clear_errors_without_network(tmp_path):
    # tests/conftest.py sets HF_HUB_OFFLINE: a hub id that is not cached must fail with advice, not hang.
    with pytest.raises(ValueError, match="cannot get checkpoint 'Philip-MIT/SOLE-R1-8B'"):
        HFRewarder(HFRewarderConfig(model="Philip-MIT/SOLE-R1-8B", local_files_only=True, device="cpu"))
    with pytest.raises(ValueError, match="not an existing folder"):
        HFRewarder(HFRewarderConfig(model=str(tmp_path / "missing" / "ckpt"), device="cpu"))
    with pytest.raises(ValueError, match="config.json"):
        HFRewarder(HFRewarderConfig(model=str(tmp_path), device="cpu"))


def test_checkpoint_generation_defaults_do_not_leak_into_sampling(tiny_model_path, tmp_path):
    # Qwen3-VL-Instruct ships top_k 20 / top_p 0.8 / temperature 0.7 defaults; the official server ignores them.
    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_model_path, checkpoint)
    saved = json.loads((checkpoint / "generation_config.json").read_text())
    saved.update(top_k=20, top_p=0.8, temperature=0.7, repetition_penalty=1.5, eos_token_id=[7, 8])
    (checkpoint / "generation_config.json").write_text(json.dumps(saved))
    rewarder = HFRewarder(HFRewarderConfig(model=str(checkpoint), device="cpu"))
    config, _ = rewarder.model._prepare_generation_config(None, **rewarder.generation_kwargs())
    assert (config.temperature, config.top_p, config.top_k, config.max_new_tokens) == (1.0, 0.9, 50, 200)
    assert config.repetition_penalty == 1.0 and config.do_sample
    assert config.eos_token_id == [7, 8]  # stop tokens are the checkpoint's
