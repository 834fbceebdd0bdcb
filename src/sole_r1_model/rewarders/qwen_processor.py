"""Build the Qwen-VL processor (tokenizer + image processor + chat template) without torchvision.

Why this module exists (the one place that works around it): `AutoProcessor` for Qwen3-VL also builds a
*video* processor, and in transformers 5.x that path needs torchvision, which is not installable beside the
CPU torch wheel here (see docs of ENVIRONMENT "Models"). SOLE-R1 only ever sends one still image per call, so we
assemble the processor from its parts: the tokenizer (`AutoTokenizer`), the PIL backend of the Qwen2-VL image
processor (the same class Qwen3-VL uses; PIL keeps the pixels identical on CPU and GPU hosts), the chat
template from the checkpoint, and an image-only subclass of the model's processor class that simply has no
`video_processor` slot. Everything else (`__call__`, placeholder expansion, `mm_token_type_ids`) is the stock
transformers code.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from transformers import AutoTokenizer, Qwen2_5_VLProcessor, Qwen2VLProcessor, Qwen3VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

# Image processor settings the official reward server installs into the SOLE-R1 checkpoint before loading it
# (philipmit/sole-r1-model, reward_server/src/reward_server/data/preprocessor_config.json; a copy lives in
# shared/data/sole_r1_official_lift/preprocessor_config.json). They equal Qwen3-VL-8B-Instruct's own.
OFFICIAL_IMAGE_PROCESSOR: dict[str, Any] = {
    "patch_size": 16,
    "merge_size": 2,
    "temporal_patch_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "size": {"shortest_edge": 65536, "longest_edge": 16777216},
    "resample": 3,  # PIL bicubic
    "do_resize": True,
    "do_rescale": True,
    "rescale_factor": 1.0 / 255.0,
    "do_normalize": True,
    "do_convert_rgb": True,
}
# Keys taken from a checkpoint's preprocessor_config.json (older Qwen2-VL configs use min/max_pixels).
_IMAGE_PROCESSOR_KEYS = set(OFFICIAL_IMAGE_PROCESSOR) | {"min_pixels", "max_pixels"}


def _image_only(processor_class: type) -> type:
    """Subclass `processor_class` with an __init__ that has no video_processor argument.

    transformers derives a processor's sub-processor slots from its __init__ signature, so leaving the
    argument out is enough to never construct (or type-check) a video processor.
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        processor_class.__init__(self, image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=None, chat_template=chat_template, **kwargs)

    return type(f"{processor_class.__name__}ImageOnly", (processor_class,), {
        "__init__": __init__,
        "__doc__": f"{processor_class.__name__} for still images only (no torchvision video processor).",
    })


# config.json model_type -> processor class; patch sizes differ (Qwen2/2.5-VL: 14, Qwen3-VL: 16).
_PROCESSOR_CLASSES = {
    "qwen3_vl": _image_only(Qwen3VLProcessor),
    "qwen3_vl_moe": _image_only(Qwen3VLProcessor),
    "qwen2_5_vl": _image_only(Qwen2_5_VLProcessor),
    "qwen2_vl": _image_only(Qwen2VLProcessor),
}


def model_type_of(model_dir: Path) -> str:
    """Read `model_type` from a checkpoint's config.json (ValueError if missing or unsupported)."""
    config_path = Path(model_dir) / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{model_dir} has no config.json: is it a transformers checkpoint directory?")
    model_type = json.loads(config_path.read_text()).get("model_type", "")
    if model_type not in _PROCESSOR_CLASSES:
        raise ValueError(f"unsupported model_type {model_type!r} in {config_path}; "
                         f"supported Qwen-VL families: {sorted(_PROCESSOR_CLASSES)}")
    return model_type


def read_chat_template(model_dir: Path, tokenizer) -> str:
    """Return the checkpoint's chat template (chat_template.jinja/.json, else the tokenizer's)."""
    model_dir = Path(model_dir)
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    as_json = model_dir / "chat_template.json"
    if as_json.is_file():
        return json.loads(as_json.read_text())["chat_template"]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.chat_template
    raise ValueError(f"no chat template in {model_dir} (expected chat_template.jinja, chat_template.json or a "
                     "chat_template in tokenizer_config.json)")


def image_processor_settings(model_dir: Path, use_official: bool,
                             overrides: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Image processor kwargs: the official SOLE-R1 settings or the checkpoint's, then `overrides`."""
    settings: dict[str, Any] = {}
    if use_official:
        settings.update(OFFICIAL_IMAGE_PROCESSOR)
    else:
        path = Path(model_dir) / "preprocessor_config.json"
        if not path.is_file():
            raise ValueError(f"{path} not found; set use_official_image_processor: true to use the official "
                             "SOLE-R1 settings instead")
        saved = json.loads(path.read_text())
        settings.update({k: v for k, v in saved.items() if k in _IMAGE_PROCESSOR_KEYS and v is not None})
    settings.update(overrides or {})
    return settings


def build_processor(tokenizer, chat_template: str, model_type: str = "qwen3_vl",
                    image_processor_kwargs: Optional[dict[str, Any]] = None):
    """Assemble an image-only Qwen-VL processor from a tokenizer, a chat template and image settings."""
    if model_type not in _PROCESSOR_CLASSES:
        raise ValueError(f"unsupported model_type {model_type!r}; supported: {sorted(_PROCESSOR_CLASSES)}")
    image_processor = Qwen2VLImageProcessorPil(**(image_processor_kwargs or OFFICIAL_IMAGE_PROCESSOR))
    return _PROCESSOR_CLASSES[model_type](image_processor=image_processor, tokenizer=tokenizer,
                                          chat_template=chat_template)


def load_processor(model_dir: Path, use_official_image_processor: bool = True,
                   image_processor_overrides: Optional[dict[str, Any]] = None):
    """Load tokenizer + chat template from a local checkpoint directory and build its processor."""
    model_dir = Path(model_dir)
    model_type = model_type_of(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    settings = image_processor_settings(model_dir, use_official_image_processor, image_processor_overrides)
    return build_processor(tokenizer, read_chat_template(model_dir, tokenizer), model_type, settings)
