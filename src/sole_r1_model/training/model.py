"""The starting checkpoint of a run: resolve it to a folder, load its processor and model for training."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator, Sequence

from sole_r1_model.training.recipe import LoraRecipe, ModelRecipe

log = logging.getLogger(__name__)

SCRATCH = "scratch"  # model.path value: a new random Qwen3-VL of model.scratch sizes (sole_r1_model.tiny)


def resolve_base(model: ModelRecipe, output_dir: Path, corpus: Sequence[str] = ()) -> Path:
    """Local folder of the starting checkpoint: tiny, scratch (built under output_dir/base, its tokenizer trained
    on `corpus` too), a folder or a hub id."""
    from accelerate import PartialState

    from sole_r1_model.rewarders.config import HFRewarderConfig
    from sole_r1_model.rewarders.hf_loading import resolve_checkpoint
    from sole_r1_model.tiny import TinyQwen3VLSpec, build_tiny_qwen3vl

    # The main process builds or downloads; the others then find it done.
    with PartialState().main_process_first():
        if model.path == SCRATCH:
            try:
                spec = TinyQwen3VLSpec(**model.scratch)
            except TypeError as exc:
                raise ValueError(f"model.scratch: {exc}; valid keys: {list(TinyQwen3VLSpec.__annotations__)}") \
                    from exc
            return build_tiny_qwen3vl(Path(output_dir) / "base", spec, corpus)
        return resolve_checkpoint(HFRewarderConfig(model=model.path, revision=model.revision))


def dataset_texts(dataset, limit: int = 20000) -> Iterator[str]:
    """The text items of the prompts and completions of (up to `limit`) rows: a scratch tokenizer's corpus."""
    for row in dataset.select_columns(["prompt", "completion"]).select(range(min(limit, len(dataset)))):
        for message in [*row["prompt"], *row["completion"]]:
            content = message.get("content")
            items = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
            for item in items:
                if item.get("type") == "text" and item.get("text"):
                    yield item["text"]


def image_processor_overrides(model: ModelRecipe, base_dir: Path) -> dict[str, Any]:
    """Image processor settings the recipe changes: the pixel bounds (Qwen's size shortest/longest_edge)."""
    from sole_r1_model.rewarders.qwen_processor import OFFICIAL_IMAGE_PROCESSOR, image_processor_settings

    if model.image_min_pixels is None and model.image_max_pixels is None:
        return {}
    settings = image_processor_settings(base_dir, use_official=not (base_dir / "preprocessor_config.json").is_file())
    size = dict(settings.get("size") or {})
    size.setdefault("shortest_edge", settings.get("min_pixels") or OFFICIAL_IMAGE_PROCESSOR["size"]["shortest_edge"])
    size.setdefault("longest_edge", settings.get("max_pixels") or OFFICIAL_IMAGE_PROCESSOR["size"]["longest_edge"])
    if model.image_max_pixels is not None:
        size["longest_edge"] = model.image_max_pixels
        size["shortest_edge"] = min(size["shortest_edge"], model.image_max_pixels)
    if model.image_min_pixels is not None:
        size["shortest_edge"] = model.image_min_pixels
    # Older Qwen2-VL configs also carry min/max_pixels, which would win over `size`: drop them.
    return {"size": size, "min_pixels": None, "max_pixels": None}


def load_training_processor(model: ModelRecipe, base_dir: Path):
    """The checkpoint's processor (its own image settings when it has them) with the recipe's pixel bounds."""
    from sole_r1_model.rewarders.qwen_processor import load_processor

    own = (Path(base_dir) / "preprocessor_config.json").is_file()
    overrides = image_processor_overrides(model, base_dir)
    processor = load_processor(base_dir, use_official_image_processor=not own, image_processor_overrides=overrides)
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    return processor


def use_bf16(precision: str) -> bool:
    """Whether to train with bf16 autocast: `auto` means on a CUDA GPU that supports it."""
    import torch

    if precision == "bf16":
        return True
    return precision == "auto" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def weights_dtype(model: ModelRecipe, lora: LoraRecipe, bf16: bool):
    """dtype to load weights in: the recipe's, or bfloat16 for LoRA under bf16 and float32 (master) otherwise."""
    import torch

    if model.dtype != "auto":
        return getattr(torch, model.dtype)
    return torch.bfloat16 if (lora.enabled and bf16) else torch.float32


def load_model(model: ModelRecipe, base_dir: Path, dtype):
    """The image-text-to-text model of the checkpoint, ready to train."""
    from transformers import AutoModelForImageTextToText

    loaded = AutoModelForImageTextToText.from_pretrained(str(base_dir), dtype=dtype,
                                                         attn_implementation=model.attn_implementation)
    loaded.config.use_cache = False  # the cache only costs memory in training; generation turns it on itself
    log.info("model %s: %.1f M parameters, %s", base_dir, loaded.num_parameters() / 1e6, dtype)
    return loaded


def lora_config(lora: LoraRecipe):
    """peft LoraConfig of the recipe, or None for full fine-tuning."""
    if not lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=list(lora.target_modules), task_type="CAUSAL_LM")
