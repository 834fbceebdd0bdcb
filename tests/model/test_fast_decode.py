"""The static-KV-cache decoder (fast_decode.py) against `generate` on the tiny Qwen3-VL, and `decode: static`.

The key property: greedy decoding gives `generate(do_sample=False)`'s tokens exactly, also for left-padded batches
whose rows have different prompt lengths (M-RoPE deltas, text positions and padding masks all differ per row).
"""
import re

import pytest
import torch

from sole_r1_model.rewarders.config import HFRewarderConfig
from sole_r1_model.rewarders.fast_decode import StaticDecoder, sample
from sole_r1_model.rewarders.hf import HFRewarder

NEW_TOKENS = 24
OFFICIAL_FORMAT = re.compile(r"<think>(.*?)</think><answer>(-?\d{1,3})%</answer>", re.DOTALL)


@pytest.fixture(scope="module")
def queries(make_query_module):
    """Three queries whose prompts differ in length (task text, wrist views), so the batch is left-padded."""
    return [make_query_module(previous=12.0),
            make_query_module(task="Open the top drawer of the kitchen cabinet slowly", previous=-30.0,
                              wrist=False, t=2),
            make_query_module(task="Push the button", previous=55.0, t=3)]


@pytest.fixture(scope="module")
def make_query_module(lift_frames):
    """make_query of conftest, usable by module-scoped fixtures."""
    from sole_r1_model.rewarder import ProgressQuery

    def make(task="Pick up the cube from the table", previous=0.0, wrist=True, t=1):
        first, prev, cur = lift_frames[0], lift_frames[t - 1], lift_frames[t]
        return ProgressQuery(task=task, external=(first[0], prev[0], cur[0]),
                             wrist=(first[1], prev[1], cur[1]) if wrist else None,
                             previous_progress=previous, query_index=t)

    return make


def processor_inputs(rewarder, queries):
    """Model inputs exactly as HFRewarder builds them: composite, chat template, left-padded processor batch."""
    texts, images = [], []
    for query in queries:
        image, messages = rewarder.prepare(query, rewarder.variant)
        texts.append(rewarder.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
        images.append(image)
    return rewarder.processor(text=texts, images=images, padding=True, padding_side="left", return_tensors="pt")


def greedy_generate(model, inputs, new_tokens, **kwargs):
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False, **kwargs)
    return output[:, inputs["input_ids"].shape[1]:]


@pytest.fixture(scope="module")
def batch(tiny_rewarder, queries):
    """The left-padded inputs of the three queries and generate's greedy tokens for them (no early stop)."""
    inputs = processor_inputs(tiny_rewarder, queries)
    lengths = inputs["attention_mask"].sum(-1)
    assert len(set(lengths.tolist())) == 3, lengths  # three different prompt lengths: real left padding
    return inputs, greedy_generate(tiny_rewarder.model, inputs, NEW_TOKENS, eos_token_id=None, pad_token_id=0)


# ------------------------------------------------------------------------------------------- StaticDecoder itself
def test_static_greedy_equals_generate_for_one_query(tiny_rewarder, queries):
    model, eos = tiny_rewarder.model, tiny_rewarder.model.generation_config.eos_token_id
    inputs = processor_inputs(tiny_rewarder, queries[:1])
    expected = greedy_generate(model, inputs, NEW_TOKENS)
    decoder = StaticDecoder(model, 1, inputs["input_ids"].shape[1] + NEW_TOKENS)
    tokens = decoder.decode(inputs, NEW_TOKENS, temperature=0.0, eos_token_ids=eos,
                            pad_token_id=model.generation_config.pad_token_id)
    assert tokens.tolist() == expected.tolist()


def test_static_greedy_equals_generate_for_a_left_padded_batch(tiny_rewarder, batch):
    inputs, expected = batch
    assert expected.shape == (3, NEW_TOKENS)
    decoder = StaticDecoder(tiny_rewarder.model, 3, inputs["input_ids"].shape[1] + NEW_TOKENS + 7)
    tokens = decoder.decode(inputs, NEW_TOKENS, temperature=0.0, eos_token_ids=None, pad_token_id=0)
    assert tokens.tolist() == expected.tolist()
    assert decoder.steps == NEW_TOKENS - 1  # no EOS: the prefill gives token 1, each step one more
    # The same decoder on the rows in another order: cache, mask and rope deltas are rebuilt per batch.
    order = [2, 0, 1]
    reordered = {key: value[order] if key != "pixel_values" else value for key, value in inputs.items()}
    per_image = [int(t.prod()) for t in inputs["image_grid_thw"]]
    reordered["pixel_values"] = torch.cat([inputs["pixel_values"].split(per_image)[i] for i in order])
    again = decoder.decode(reordered, NEW_TOKENS, temperature=0.0, eos_token_ids=None, pad_token_id=0)
    assert again.tolist() == expected[order].tolist()


def test_rows_finishing_early_are_padded_and_decoding_stops(tiny_rewarder, batch):
    inputs, free_run = batch
    pad = 0
    # Stop tokens the greedy rows will emit at different steps: the finished rows must then emit only pad.
    eos = sorted({int(free_run[0, 3]), int(free_run[1, 6]), int(free_run[2, 9])} - {pad})
    expected = greedy_generate(tiny_rewarder.model, inputs, NEW_TOKENS, eos_token_id=eos, pad_token_id=pad)
    decoder = StaticDecoder(tiny_rewarder.model, 3, inputs["input_ids"].shape[1] + NEW_TOKENS, sync_every=1)
    tokens = decoder.decode(inputs, NEW_TOKENS, temperature=0.0, eos_token_ids=eos, pad_token_id=pad)
    assert tokens.tolist() == expected.tolist()
    ends = []
    for row in tokens.tolist():
        end = next(i for i, token in enumerate(row) if token in eos)
        assert all(token == pad for token in row[end + 1:]), row
        ends.append(end)
    assert len(set(ends)) > 1  # rows really finished at different steps
    assert tokens.shape[1] == max(ends) + 1 < NEW_TOKENS  # stopped when the last row finished, like generate
    assert decoder.steps == max(ends)
    # Checking the "all finished" flag only every 8 steps may run extra steps, never changing the tokens.
    lazy = StaticDecoder(tiny_rewarder.model, 3, inputs["input_ids"].shape[1] + NEW_TOKENS, sync_every=8)
    assert lazy.decode(inputs, NEW_TOKENS, temperature=0.0, eos_token_ids=eos, pad_token_id=pad).tolist() \
        == expected.tolist()
    assert max(ends) <= lazy.steps < NEW_TOKENS - 1


def test_allowed_fn_constrains_every_row(tiny_rewarder, batch):
    inputs, _ = batch
    allowed = {0: [5, 6], 1: [7], 2: [8, 9, 10]}
    decoder = StaticDecoder(tiny_rewarder.model, 3, inputs["input_ids"].shape[1] + 8)
    seen = []

    def allowed_fn(row, generated):
        seen.append((row, list(generated)))
        return allowed[row] if row != 2 else torch.tensor(allowed[row])

    tokens = decoder.decode(inputs, 4, temperature=1.0, top_p=0.9, top_k=50, eos_token_ids=None,
                            pad_token_id=0, allowed_fn=allowed_fn)
    for row, values in enumerate(tokens.tolist()):
        assert set(values) <= set(allowed[row])
    assert (1, tokens[1, :2].tolist()) in seen  # the callback sees the row's own tokens so far


def test_cache_too_short_is_a_clear_error(tiny_rewarder, batch):
    inputs, _ = batch
    decoder = StaticDecoder(tiny_rewarder.model, 3, inputs["input_ids"].shape[1] + 2)
    with pytest.raises(ValueError, match="static cache length"):
        decoder.decode(inputs, 3)
    with pytest.raises(ValueError, match="batch size 3"):
        decoder.decode({key: value[:1] for key, value in inputs.items()}, 1)


# ----------------------------------------------------------------------------------------- HFRewarder integration
@pytest.fixture(scope="module")
def rewarders(tiny_model_path):
    """(generate, static) rewarders on the same tiny checkpoint, plain and format-constrained."""
    def build(**options):
        return HFRewarder(HFRewarderConfig(model=str(tiny_model_path), device="cpu", dtype="float32", seed=0,
                                           max_new_tokens=40, **options))

    return {(decode, constrain): build(decode=decode, constrain_format=constrain, max_think_tokens=20)
            for decode in ("generate", "static") for constrain in (False, True)}


@pytest.mark.parametrize("constrain", [False, True])
def test_rewarder_static_decode_gives_generate_results_at_temperature_0(rewarders, queries, constrain):
    generate, static = rewarders["generate", constrain], rewarders["static", constrain]
    expected = generate.score(queries, temperature=0.0)
    results = static.score(queries, temperature=0.0)
    assert [(r.raw_text, r.progress, r.valid, r.error) for r in results] == \
        [(r.raw_text, r.progress, r.valid, r.error) for r in expected]
    if constrain:
        assert all(r.valid and OFFICIAL_FORMAT.fullmatch(r.raw_text) for r in results), results
    assert list(static._static_decoders) == [3]  # one decoder, for the batch size 3


def test_rewarder_static_decode_samples_valid_constrained_answers(rewarders, queries):
    results = rewarders["static", True].score(queries)  # temperature 1.0, top_p 0.9, top_k 50
    for result in results:
        assert result.valid, (result.error, result.raw_text)
        assert OFFICIAL_FORMAT.fullmatch(result.raw_text)


def test_static_decoders_are_reused_and_rebuilt_when_too_short(rewarders):
    rewarder = rewarders["static", False]
    first = rewarder._static_decoder(2, 300, 40)
    assert first.max_cache_len == 512 + 40  # prompt rounded up to a multiple of 256, plus max_new_tokens
    assert rewarder._static_decoder(2, 500, 40) is first
    longer = rewarder._static_decoder(2, 520, 40)
    assert longer is not first and longer.max_cache_len == 768 + 40
    assert rewarder._static_decoders[2] is longer
    assert longer.compile_mode is None  # compile_decode auto: eager on CPU


def test_static_decode_failure_gives_failed_results(rewarders, queries, monkeypatch):
    rewarder = rewarders["static", False]

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(StaticDecoder, "decode", broken)
    results = rewarder.score(queries[:2])
    assert [r.valid for r in results] == [False, False]
    assert all("generate failed: RuntimeError: CUDA out of memory" in r.error for r in results)
    assert [r.progress for r in results] == [12.0, -30.0]  # previous progress carried forward


def test_static_decode_honours_a_generate_prefix_allowed_tokens_fn(rewarders, tiny_model_path, queries):
    tokenizer = rewarders["generate", False].tokenizer
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    target = tokenizer.encode("<think>cube lifted</think><answer>42%</answer>", add_special_tokens=False) + [eos]
    prompt_lengths = []

    def force(batch_id, input_ids):  # generate's contract: the row's full ids, prompt (with padding) included
        prompt_lengths.append(len(input_ids))
        done = len(input_ids) - prompt_width
        return [target[done]] if done < len(target) else [eos]

    rewarder = HFRewarder(HFRewarderConfig(model=str(tiny_model_path), device="cpu", max_new_tokens=24,
                                           decode="static"), generate_overrides={"prefix_allowed_tokens_fn": force})
    prompt_width = processor_inputs(rewarder, queries[:2])["input_ids"].shape[1]
    results = rewarder.score(queries[:2])
    assert [r.raw_text for r in results] == ["<think>cube lifted</think><answer>42%</answer>"] * 2
    assert [r.progress for r in results] == [42.0, 42.0]
    assert min(prompt_lengths) == prompt_width


def test_static_decode_rejects_generate_overrides_it_cannot_honour(tiny_model_path):
    with pytest.raises(ValueError, match="repetition_penalty"):
        HFRewarder(HFRewarderConfig(model=str(tiny_model_path), device="cpu", decode="static"),
                   generate_overrides={"repetition_penalty": 1.2})


# ------------------------------------------------------------------------------------------------------ sampling
def test_sample_top_k_1_and_tiny_top_p_are_argmax():
    logits = torch.randn(16, 300, generator=torch.Generator().manual_seed(0))
    argmax = logits.argmax(-1)
    assert torch.equal(sample(logits, 0.0, 0.9, 50), argmax)
    assert torch.equal(sample(logits, 1.0, 1.0, 1), argmax)
    assert torch.equal(sample(logits, 1.0, 1e-6, None), argmax)
    assert torch.equal(sample(logits.bfloat16(), 0.0, 1.0, 0), logits.bfloat16().float().argmax(-1))


def test_seeded_samples_come_only_from_the_top_k_set():
    logits = torch.randn(4, 300, generator=torch.Generator().manual_seed(1))
    top = logits.topk(5, dim=-1).indices
    generator = torch.Generator().manual_seed(2)
    draws = torch.stack([sample(logits, 2.0, 1.0, 5, generator) for _ in range(200)], dim=1)
    for row in range(4):
        assert set(draws[row].tolist()) <= set(top[row].tolist())
    assert len(set(draws[0].tolist())) > 1  # really sampling, at a high temperature
    again = sample(logits, 2.0, 1.0, 5, torch.Generator().manual_seed(2))
    assert torch.equal(again, draws[:, 0])  # same seed, same first draw


def test_top_p_keeps_the_smallest_set_reaching_it():
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    logits = probs.log()
    generator = torch.Generator().manual_seed(0)
    draws = {int(sample(logits, 1.0, 0.75, None, generator)) for _ in range(300)}
    assert draws == {0, 1}  # 0.5 + 0.3 reaches 0.75: the third token is never drawn
    draws = {int(sample(logits, 1.0, 0.85, None, generator)) for _ in range(300)}
    assert draws == {0, 1, 2}


# ------------------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize("field, value", [("decode", "fast"), ("decode", None), ("compile_decode", "on"),
                                          ("compile_decode", "max_autotune")])
def test_bad_decode_options_are_rejected_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field} must be one of"):
        HFRewarderConfig(**{field: value})


def test_decode_defaults_keep_generate():
    config = HFRewarderConfig()
    assert (config.decode, config.compile_decode) == ("generate", "auto")
    assert HFRewarderConfig(decode="static", compile_decode="reduce-overhead").decode == "static"
