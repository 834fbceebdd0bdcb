"""The `topreward` backend on the tiny Qwen3-VL: TOPReward's prompt, P("True") from one forward pass, the mapping.

Expected progress comes from the model's full logits, computed here the way TOPReward's client does (prompt,
then the answer appended, its tokens found by tokenizing the prompt alone), not from the rewarder's code.
"""
import dataclasses
import math
import shutil

import pytest
import torch
import yaml

from sole_r1_model.rewarders import make_rewarder
from sole_r1_model.rewarders.config import TOPRewardConfig, resolve_spec
from sole_r1_model.rewarders.topreward import progress_from_log_probs

# Few image tokens per frame (4x4 patches instead of the checkpoint's 16x16 minimum): fast on a shared CPU.
SMALL_IMAGES = {"size": {"shortest_edge": 64 * 64, "longest_edge": 128 * 128}}
# TOPReward's texts, written out from upstream topreward/clients/qwen.py (`_instruction_reward_prompt_parts`).
TOPREWARD_PREFIX = "The above video shows a robot manipulation trajectory that completes the following task: "
TOPREWARD_SUFFIX = "{task} Decide whether the above statement is True or not. The answer is:"


def write_yaml(path, **options):
    """A rewarder YAML file with these options (what a user writes to run TOPReward on another checkpoint)."""
    path.write_text(yaml.safe_dump({"backend": "topreward", "device": "cpu",
                                    "image_processor_overrides": SMALL_IMAGES, **options}))
    return path


@pytest.fixture(scope="module")
def rewarder(tiny_model_path, tmp_path_factory):
    """TOPReward on the tiny model, built from a YAML file; its tokenizer splits " True" into 5 tokens."""
    with make_rewarder(write_yaml(tmp_path_factory.mktemp("yaml") / "t.yaml", model=str(tiny_model_path))) as built:
        yield built


@pytest.fixture(scope="module")
def single_token_model(tiny_model_path, tmp_path_factory):
    """The tiny model with " True" and " False" added as single tokens, as in real Qwen tokenizers."""
    from transformers import AutoTokenizer, Qwen3VLForConditionalGeneration

    path = tmp_path_factory.mktemp("tiny-single-token") / "ckpt"
    shutil.copytree(tiny_model_path, path)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    assert tokenizer.add_tokens([" True", " False"]) == 2
    tokenizer.save_pretrained(str(path))
    model = Qwen3VLForConditionalGeneration.from_pretrained(str(path))
    torch.manual_seed(1)  # the two new output rows are random, so P(True) != P(False)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model.save_pretrained(str(path))
    return path


def topreward_prompt(rewarder, task, chat=False):
    """TOPReward's prompt text before the answer, built from the chat template as the upstream client does."""
    images = [{"type": "image"}] * 3
    if chat:
        turn = [{"role": "user", "content": images + [{"type": "text", "text": TOPREWARD_PREFIX +
                                                       TOPREWARD_SUFFIX.format(task=task)}]}]
        return rewarder.processor.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
    turn = [{"role": "user", "content": images + [{"type": "text", "text": TOPREWARD_PREFIX}]}]
    text = rewarder.processor.apply_chat_template(turn, tokenize=False, add_generation_prompt=False)
    return text.split(rewarder.processor.tokenizer.eos_token)[0] + TOPREWARD_SUFFIX.format(task=task)


def reference_log_prob(rewarder, query, answer, chat=False):
    """log P(answer | prompt, frames): the model's full logits, chain rule over the answer's tokens."""
    prompt = topreward_prompt(rewarder, query.task, chat)
    frames = [list(query.external)]
    prompt_ids = rewarder.processor(text=[prompt], images=frames, return_tensors="pt")["input_ids"][0]
    full = rewarder.processor(text=[prompt + answer], images=frames, return_tensors="pt")
    assert full["input_ids"][0, :len(prompt_ids)].tolist() == prompt_ids.tolist()
    with torch.no_grad():
        log_probs = torch.log_softmax(rewarder.model(**full).logits[0].float(), dim=-1)
    answer_ids = full["input_ids"][0, len(prompt_ids):].tolist()
    assert answer_ids, "the answer must add tokens"
    return sum(log_probs[len(prompt_ids) - 1 + j, token].item() for j, token in enumerate(answer_ids))


def expected_progress(log_true, log_false):
    """100 P(True) / (P(True) + P(False)), the default mapping, written independently."""
    return 100.0 / (1.0 + math.exp(log_false - log_true))


def count_forward_rows(monkeypatch, model):
    """Record the batch size of every forward pass of `model`; fail on any call to `generate`."""
    rows = []
    original = model.forward

    def forward(*args, **kwargs):
        rows.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    def generate(*args, **kwargs):
        raise AssertionError("TOPReward must not generate")

    monkeypatch.setattr(model, "forward", forward)
    monkeypatch.setattr(model, "generate", generate)
    return rows


# ----------------------------------------------------------------------------------------------- the method
def test_prompt_is_topreward_statement_ending_in_true(rewarder, make_query):
    query = make_query(task="Pick up the cube from the table.")
    text = rewarder.prompt_text(query)
    assert text == topreward_prompt(rewarder, query.task) + " True"
    assert text.count("<|image_pad|>") == 3 and "<|im_end|>" not in text
    assert text.endswith("task: Pick up the cube from the table. Decide whether the above statement is True or "
                         "not. The answer is: True")


def test_progress_is_p_true_against_p_false_from_the_models_logits(rewarder, make_query):
    query = make_query(task="Pick up the cube from the table.", previous=20.0, t=2)
    [result] = rewarder.score([query])
    log_true = reference_log_prob(rewarder, query, " True")
    log_false = reference_log_prob(rewarder, query, " False")
    assert result.valid and result.error == ""
    assert result.progress == pytest.approx(expected_progress(log_true, log_false), abs=1e-3)
    assert result.rewarder == "topreward" and not result.privileged and result.raw_text == ""
    assert "log P(True)" in result.reasoning and result.latency > 0


def test_single_token_answers_are_read_from_one_row_per_query(single_token_model, make_query, monkeypatch):
    with make_rewarder({"backend": "topreward", "model": str(single_token_model), "device": "cpu",
                        "image_processor_overrides": SMALL_IMAGES}) as rewarder:
        assert rewarder.single_token
        queries = [make_query(task="Open the drawer.", t=1), make_query(task="Push the button.", t=3)]
        rows = count_forward_rows(monkeypatch, rewarder.model)
        results = rewarder.score(queries)
        assert rows == [2]  # one forward pass, one row per query: both answers read at the last position
        monkeypatch.undo()
        for query, result in zip(queries, results):
            log_true = reference_log_prob(rewarder, query, " True")
            log_false = reference_log_prob(rewarder, query, " False")
            assert result.progress == pytest.approx(expected_progress(log_true, log_false), abs=1e-3)


def test_multi_token_answers_take_one_row_per_answer_in_one_forward_pass(rewarder, make_query, monkeypatch):
    assert not rewarder.single_token  # the tiny tokenizer spells " True" with 5 tokens
    rows = count_forward_rows(monkeypatch, rewarder.model)
    rewarder.score([make_query(), make_query(task="Open the drawer.", t=2)])
    assert rows == [4]


def test_mapping_true_is_one_hundred_times_p_true(single_token_model, make_query):
    with make_rewarder({"backend": "topreward", "model": str(single_token_model), "device": "cpu",
                        "mapping": "true", "image_processor_overrides": SMALL_IMAGES}) as rewarder:
        query = make_query(task="Open the drawer.", t=2)
        [result] = rewarder.score([query])
        assert result.progress == pytest.approx(100.0 * math.exp(reference_log_prob(rewarder, query, " True")),
                                                rel=1e-4)


def test_chat_template_variant_scores_true_as_the_assistant_reply(tiny_model_path, make_query):
    with make_rewarder({"backend": "topreward", "model": str(tiny_model_path), "device": "cpu",
                        "add_chat_template": True, "image_processor_overrides": SMALL_IMAGES}) as rewarder:
        query = make_query(task="Push the button.", t=2)
        assert rewarder.prompt_text(query).endswith("The answer is:<|im_end|>\n<|im_start|>assistant\nTrue")
        [result] = rewarder.score([query])
        log_true = reference_log_prob(rewarder, query, "True", chat=True)
        log_false = reference_log_prob(rewarder, query, "False", chat=True)
        assert result.progress == pytest.approx(expected_progress(log_true, log_false), abs=1e-3)


@pytest.mark.parametrize("log_true, log_false, mapping, progress", [
    (math.log(0.75), math.log(0.25), "true_vs_false", 75.0),
    (math.log(0.06), math.log(0.02), "true_vs_false", 75.0),   # only the ratio counts
    (-1000.0, 0.0, "true_vs_false", 0.0),                       # no overflow at extreme odds
    (0.0, -1000.0, "true_vs_false", 100.0),
    (math.log(0.3), math.log(0.6), "true", 30.0),
])
def test_probability_mapping(log_true, log_false, mapping, progress):
    assert progress_from_log_probs(log_true, log_false, mapping) == pytest.approx(progress, abs=1e-9)


# ------------------------------------------------------------------------------------------- batching, order
def test_batch_results_equal_single_results_in_query_order(tiny_model_path, make_query):
    with make_rewarder({"backend": "topreward", "model": str(tiny_model_path), "device": "cpu",
                        "max_batch_size": 2, "image_processor_overrides": SMALL_IMAGES}) as rewarder:
        queries = [make_query(task="Pick up the cube.", t=1), make_query(task="Open the top drawer now.", t=2),
                   make_query(task="Push the red button.", t=3)]
        batch = rewarder.score(queries)  # split into forward passes of 2 and 1 queries
        singles = [rewarder.score([query])[0] for query in queries]
    assert len({round(r.progress, 3) for r in singles}) == 3  # distinct answers, so a swap would show
    for together, alone in zip(batch, singles):
        assert together.valid and alone.valid
        assert together.progress == pytest.approx(alone.progress, abs=1e-3)


# ------------------------------------------------------------------------------------------------- failures
def test_missing_camera_is_an_invalid_counted_result(tiny_model_path, make_query):
    with make_rewarder({"backend": "topreward", "model": str(tiny_model_path), "device": "cpu", "camera": "wrist",
                        "image_processor_overrides": SMALL_IMAGES}) as rewarder:
        results = rewarder.score([make_query(previous=5.0), make_query(previous=42.0, wrist=False)])
        assert results[0].valid
        assert not results[1].valid and results[1].progress == 42.0 and "wrist" in results[1].error
        assert (rewarder.stats["queries"], rewarder.stats["invalid"], rewarder.stats["errors"]) == (2, 1, 1)


def test_failed_forward_pass_makes_its_queries_invalid_and_counted(rewarder, make_query, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(rewarder.model, "forward", out_of_memory)
    before = dict(rewarder.stats)
    results = rewarder.score([make_query(previous=33.0), make_query(previous=-10.0)])
    assert [r.valid for r in results] == [False, False]
    assert [r.progress for r in results] == [33.0, -10.0]
    assert all("RuntimeError: CUDA out of memory" in r.error for r in results)
    assert rewarder.stats["invalid"] - before.get("invalid", 0) == 2
    assert rewarder.stats["errors"] - before.get("errors", 0) == 2


def test_non_finite_logits_are_an_invalid_answer(rewarder, make_query, monkeypatch):
    original = rewarder.model.forward

    def nan_logits(*args, **kwargs):
        output = original(*args, **kwargs)
        output.logits = torch.full_like(output.logits, float("nan"))
        return output

    monkeypatch.setattr(rewarder.model, "forward", nan_logits)
    [result] = rewarder.score([make_query(previous=12.0)])
    assert not result.valid and result.progress == 12.0 and "non-finite" in result.error


# -------------------------------------------------------------------------------------------- configuration
def test_unknown_key_is_named_in_the_error():
    with pytest.raises(ValueError, match="unknown key 'temperature' for rewarder backend 'topreward'"):
        make_rewarder({"backend": "topreward", "temperature": 0.0})


@pytest.mark.parametrize("options, field", [({"mapping": "softmax"}, "mapping"), ({"camera": "top"}, "camera"),
                                            ({"max_batch_size": 0}, "max_batch_size"), ({"dtype": "int8"}, "dtype"),
                                            ({"add_chat_template": "yes"}, "add_chat_template")])
def test_invalid_values_are_rejected_naming_the_field(options, field):
    with pytest.raises(ValueError, match=field):
        TOPRewardConfig(**options)


def test_shipped_yaml_restates_every_default(repo_root):
    path = repo_root / "config" / "rewarders" / "topreward.yaml"
    backend, config = resolve_spec(path)
    assert (backend, config) == ("topreward", TOPRewardConfig()) == resolve_spec("topreward")
    assert set(yaml.safe_load(path.read_text())) - {"backend"} == {f.name for f in dataclasses.fields(config)}
    assert config.model == "Qwen/Qwen3-VL-8B-Instruct" and config.mapping == "true_vs_false"
