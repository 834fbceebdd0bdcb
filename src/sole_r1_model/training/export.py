"""The result of a run: `<output_dir>/final`, a plain transformers checkpoint the `sole_r1` rewarder loads as is.

It holds the weights (LoRA adapters merged in), config and generation config, the tokenizer, the chat template
(chat_template.jinja), the image processor settings the model was trained with (preprocessor_config.json, read
by rewarders/qwen_processor.load_processor), `recipe.yaml` (the resolved training recipe) and `rewarder.yaml`,
a rewarder spec pointing at the folder: `sole-r1 score ... --rewarder <output_dir>/final/rewarder.yaml`.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import yaml

from sole_r1_model.training.recipe import Recipe

log = logging.getLogger(__name__)

FINAL_DIR = "final"
ADAPTER_DIR = "adapter"
REWARDER_FILE = "rewarder.yaml"
RECIPE_FILE = "recipe.yaml"
_IMAGE_ONLY_SUFFIX = "ImageOnly"  # qwen_processor's image-only processor classes end with this


def rewarder_spec(final_dir: Path) -> dict:
    """The rewarder config (config/rewarders/ format) that scores with this checkpoint as it was trained."""
    # use_official_image_processor: false -> the checkpoint's preprocessor_config.json (the recipe's pixel bounds)
    # `model: .` is the folder the YAML lies in, so the exported folder can be moved or shipped as it is.
    return {"backend": "sole_r1", "model": ".", "use_official_image_processor": False}


def save_processor(processor, directory: Path) -> None:
    """Tokenizer, chat template and image processor settings, in the files load_processor reads."""
    directory = Path(directory)
    processor.save_pretrained(str(directory))
    processor.image_processor.save_pretrained(str(directory))  # preprocessor_config.json
    if processor.chat_template and not (directory / "chat_template.jinja").is_file():
        (directory / "chat_template.jinja").write_text(processor.chat_template)
    # The saved class name must be the stock one, so AutoProcessor can also read the folder where torchvision is.
    for name in ("processor_config.json", "preprocessor_config.json"):
        path = directory / name
        if path.is_file():
            data = json.loads(path.read_text())
            if str(data.get("processor_class", "")).endswith(_IMAGE_ONLY_SUFFIX):
                data["processor_class"] = data["processor_class"][:-len(_IMAGE_ONLY_SUFFIX)]
                path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _merge_adapter(adapter_dir: Path, base_dir: Path, final_dir: Path) -> None:
    """Load the base checkpoint, apply the trained LoRA adapter, merge it into the weights and save."""
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(str(base_dir), dtype="auto")
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.config.use_cache = True
    merged.save_pretrained(str(final_dir))


def export_final(trainer, processor, recipe: Recipe, base_dir: Path) -> Path:
    """Write `<output_dir>/final` (every process must call this; the main process writes)."""
    from peft import PeftModel

    output_dir = Path(recipe.output_dir)
    final_dir = output_dir / FINAL_DIR
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    unwrapped.config.use_cache = True  # training turned the KV cache off; inference wants it back
    is_lora = isinstance(unwrapped, PeftModel)
    # save_model gathers FSDP/DeepSpeed shards and writes on the main process only.
    trainer.save_model(str(output_dir / ADAPTER_DIR if is_lora else final_dir))
    if trainer.accelerator.is_main_process:
        if is_lora:
            if final_dir.exists():
                shutil.rmtree(final_dir)
            _merge_adapter(output_dir / ADAPTER_DIR, base_dir, final_dir)
        save_processor(processor, final_dir)
        recipe.save(final_dir / RECIPE_FILE)
        (final_dir / REWARDER_FILE).write_text(yaml.safe_dump(rewarder_spec(final_dir), sort_keys=False))
        log.info("checkpoint for the sole_r1 rewarder: %s (rewarder spec: %s)", final_dir, final_dir / REWARDER_FILE)
    trainer.accelerator.wait_for_everyone()
    return final_dir
