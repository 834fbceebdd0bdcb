"""The `sole_r1` backend on the tiny Qwen3-VL: real processor, chat template, batched `generate`, parsing."""
import json
import re
import shutil

import pytest

from sole_r1_model.prompt import SYSTEM_PROMPT
from sole_r1_model.rewarders.config import HFRewarderConfig
from sole_r1_model.rewarders.hf import HFRewarder

from .forcing_testlib import forcing

TASK_NUMBER = re.compile(r"task number (-?\d+)")


def forcing_answers(tokenizer, answer_for_prompt):
    """Force `<think>cube lifted</think><answer>N%</answer>` with N = `answer_for_prompt(prompt_text)`."""
    return forcing(tokenizer, lambda prompt: f"<think>cube lifted</think><answer>{answer_for_prompt(prompt)}%</answer>")


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


# ------------------------------------------------------------------------------------ format-constrained decoding
OFFICIAL_FORMAT = re.compile(r"<think>(.*?)</think><answer>(-?\d{1,3})%</answer>", re.DOTALL)


def test_constrained_format_gives_valid_official_answers_while_sampling(tiny_model_path, make_query):
    config = HFRewarderConfig(model=str(tiny_model_path), device="cpu", max_new_tokens=40, max_think_tokens=20,
                              constrain_format=True, seed=3)
    assert config.temperature == 1.0  # sampling on: the random model picks its own reasoning and number
    rewarder = HFRewarder(config)
    queries = [make_query(previous=12.0), make_query(task="Open the drawer", previous=-30.0, wrist=False, t=2)]
    results = rewarder.score(queries)
    assert len(results) == 2
    for result in results:
        assert result.valid, (result.error, result.raw_text)
        match = OFFICIAL_FORMAT.fullmatch(result.raw_text)
        assert match, result.raw_text
        assert -100.0 <= result.progress <= 100.0
        assert result.progress == max(-100, min(100, int(match.group(2))))
        assert result.reasoning == match.group(1).strip()


def test_format_constraint_is_off_by_default_and_leaves_generation_unchanged(tiny_rewarder, tiny_model_path,
                                                                             make_query):
    assert HFRewarderConfig().constrain_format is False and tiny_rewarder.answer_format is None
    query = make_query()
    unconstrained = HFRewarder(HFRewarderConfig(model=str(tiny_model_path), device="cpu", max_new_tokens=16,
                                                constrain_format=False))
    assert unconstrained.answer_format is None
    assert "prefix_allowed_tokens_fn" not in unconstrained.generation_kwargs()
    # Same weights, same greedy decoding: the flag set to false gives the fixture's (flag absent) text exactly.
    expected = tiny_rewarder.score([query], temperature=0.0)[0].raw_text
    assert unconstrained.score([query], temperature=0.0)[0].raw_text == expected
    assert not OFFICIAL_FORMAT.fullmatch(expected)  # the random model left alone does not write the format


def test_format_constraint_allows_every_token_of_a_well_formed_answer(tiny_rewarder):
    from sole_r1_model.rewarders.answer_format import AnswerFormat

    tokenizer = tiny_rewarder.tokenizer
    constraint = AnswerFormat(tokenizer, tokenizer.eos_token_id, max_think_tokens=150, max_new_tokens=200)
    for answer in ("<think>The robot lifted the cube off the table.</think><answer>90%</answer>",
                   "<think></think><answer>-7%</answer>", "<think>gripper open</think><answer>100%</answer>"):
        ids = tokenizer.encode(answer, add_special_tokens=False) + [tokenizer.eos_token_id]
        for step, token in enumerate(ids):
            allowed = [int(t) for t in constraint.allowed(ids[:step])]
            assert token in allowed, (answer, step, tokenizer.decode([token]))


def _qwen_like_tokenizer():
    """A byte-level BPE that, like Qwen's, splits digits one per token and has no single token for `<answer>`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    corpus = ["<answer>35%</answer> the gripper moved the cube", "</think><answer>-12%</answer>"] * 20
    bpe.train_from_iterator(corpus, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.add_tokens(["<think>", "</think>"])  # Qwen3: the think tags are added, non-special tokens
    return tokenizer


def test_format_constraint_handles_multi_token_tags_and_single_digit_tokens():
    import random

    from sole_r1_model.rewarders.answer_format import AnswerFormat

    tokenizer = _qwen_like_tokenizer()
    assert len(tokenizer.encode("<answer>", add_special_tokens=False)) > 1
    assert len(tokenizer.encode("100", add_special_tokens=False)) == 3
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    constraint = AnswerFormat(tokenizer, eos, max_think_tokens=12, max_new_tokens=64)
    rng = random.Random(0)
    lengths = set()
    for _ in range(40):  # random walks stand in for a model that samples uniformly among the allowed tokens
        ids = []
        while len(ids) < 64 and eos not in ids:  # a constraint that never ends would fail the regex below
            ids.append(rng.choice([int(t) for t in constraint.allowed(ids)]))
        think = ids[len(constraint.open_ids):len(ids) - len(constraint.end_ids)]
        assert len(think) <= 12 + len(constraint.close_ids) + 4  # reasoning budget + forced close + "-ddd"
        text = tokenizer.decode(ids, skip_special_tokens=True)
        match = OFFICIAL_FORMAT.fullmatch(text)
        assert match, text
        lengths.add(len(match.group(2).lstrip("-")))
    assert lengths == {1, 2, 3}  # the walk reached one-, two- and three-digit answers


def test_format_constraint_needs_room_for_the_answer(tiny_rewarder):
    from sole_r1_model.rewarders.answer_format import AnswerFormat

    tokenizer = tiny_rewarder.tokenizer
    with pytest.raises(ValueError, match="constrain_format needs max_new_tokens >="):
        AnswerFormat(tokenizer, tokenizer.eos_token_id, max_think_tokens=150, max_new_tokens=8)
    small = AnswerFormat(tokenizer, tokenizer.eos_token_id, max_think_tokens=150, max_new_tokens=32)
    assert 1 <= small.think_limit < 32  # capped by max_new_tokens, so the answer is never cut off


def test_format_constraint_lets_reasoning_write_arrows_but_never_a_tag_opener(tiny_rewarder):
    from sole_r1_model.rewarders.answer_format import AnswerFormat

    tokenizer = tiny_rewarder.tokenizer
    constraint = AnswerFormat(tokenizer, tokenizer.eos_token_id, max_think_tokens=40, max_new_tokens=64)
    thinking = {int(t) for t in constraint.allowed(list(constraint.open_ids))}
    arrow = tokenizer.encode("20% -> 30%", add_special_tokens=False)   # the embedded model's reasoning ends so
    assert set(arrow) <= thinking
    openers = {i for i in range(len(tokenizer)) if "<" in tokenizer.decode([i])} - {constraint.close_ids[0]}
    assert openers and not openers & thinking
