"""The tiny offline Qwen3-VL: real architecture, tokenizer with the chat tokens, official image settings, cache."""
import json

import numpy as np
import torch
from transformers import AutoModelForImageTextToText

from sole_r1_model.rewarders.qwen_processor import load_processor
from sole_r1_model.tiny import CHAT_TEMPLATE, TinyQwen3VLSpec, build_tiny_qwen3vl, is_built

def test_tiny_model_is_a_small_qwen3vl_that_reloads(tiny_model_path):
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_path))
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    params = sum(p.numel() for p in model.parameters())
    assert 1_000_000 <= params <= 10_000_000


def test_tiny_model_build_is_cached(tiny_model_path):
    weights = tiny_model_path / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_tiny_qwen3vl(tiny_model_path) == tiny_model_path
    assert weights.stat().st_mtime_ns == before
    assert is_built(tiny_model_path)
    assert not is_built(tiny_model_path, TinyQwen3VLSpec(seed=1))  # another spec would be rebuilt


def test_tiny_image_processor_uses_official_settings(tiny_model_path, official_lift):
    official = json.loads((official_lift / "preprocessor_config.json").read_text())
    saved = json.loads((tiny_model_path / "preprocessor_config.json").read_text())
    for key in ("patch_size", "merge_size", "temporal_patch_size", "image_mean", "image_std", "size", "resample"):
        assert saved[key] == official[key], key


def test_tokenizer_keeps_chat_and_reasoning_tokens_whole(tiny_model_path):
    tokenizer = load_processor(tiny_model_path).tokenizer
    for token in ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>", "<think>", "</answer>"):
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    ids = tokenizer.encode("<|im_start|>assistant\n<think>ok</think><answer>-7%</answer><|im_end|>",
                           add_special_tokens=False)
    # Control tokens vanish on decode; the reasoning tags stay, because the parser needs them.
    assert tokenizer.decode(ids, skip_special_tokens=True) == "assistant\n<think>ok</think><answer>-7%</answer>"


def test_chat_template_renders_qwen_format(tiny_model_path):
    processor = load_processor(tiny_model_path)
    assert processor.chat_template == CHAT_TEMPLATE
    messages = [{"role": "system", "content": "S."},
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nS.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>"
                    "<|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n")


def test_processor_expands_a_composite_to_888_image_tokens(tiny_model_path):
    # 784x1176 -> the processor's own smart_resize (factor 16*2) -> 768x1184 -> 48x74 patches -> /4 merged.
    processor = load_processor(tiny_model_path)
    text = "<|vision_start|><|image_pad|><|vision_end|>hi"
    inputs = processor(text=[text], images=[np.zeros((784, 1176, 3), np.uint8)], return_tensors="pt")
    assert inputs["image_grid_thw"].tolist() == [[1, 48, 74]]
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == image_id).sum()) == 888
    assert int(inputs["mm_token_type_ids"].sum()) == 888


def test_tiny_model_forward_gives_finite_logits(tiny_model_path):
    processor = load_processor(tiny_model_path)
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_path)).eval()
    rng = np.random.default_rng(0)
    inputs = processor(text=["<|vision_start|><|image_pad|><|vision_end|>progress?"],
                       images=[rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)], return_tensors="pt")
    with torch.inference_mode():
        logits = model(**inputs).logits
    assert logits.shape[-1] == model.config.text_config.vocab_size
    assert torch.isfinite(logits).all()


def test_a_tokenizer_corpus_shortens_its_texts_and_is_part_of_the_build_identity(tmp_path):
    from transformers import AutoTokenizer

    from sole_r1_model.tiny import TinyQwen3VLSpec, build_tiny_qwen3vl, is_built

    spec = TinyQwen3VLSpec(text_layers=1, vision_depth=2, text_hidden=64, text_intermediate=128, vision_hidden=32,
                           vision_intermediate=64)
    corpus = [f"The gripper moved {d} cm closer to the cube. Progress {p}% -> {p + d}%." for d in range(1, 9)
              for p in range(0, 90, 7)] * 5
    plain = AutoTokenizer.from_pretrained(build_tiny_qwen3vl(tmp_path / "plain", spec))
    learnt_path = build_tiny_qwen3vl(tmp_path / "learnt", spec, corpus)
    learnt = AutoTokenizer.from_pretrained(learnt_path)
    sample = "The gripper moved 3 cm closer to the cube. Progress 21% -> 24%."
    assert len(learnt(sample)["input_ids"]) < 0.7 * len(plain(sample)["input_ids"])
    assert learnt.decode(learnt(sample)["input_ids"]) == sample
    assert is_built(learnt_path, spec, corpus) and not is_built(learnt_path, spec)   # another corpus: rebuild
