"""Loading a Qwen-VL checkpoint with transformers: where the weights are, which device and dtype, the processor.

Shared by every in-process backend (`sole_r1`, `topreward`, `roboreward`), so a hub id, a local folder and
`tiny` resolve the same way everywhere, and a missing checkpoint or GPU fails with the same advice.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

from sole_r1_model.rewarders.config import TINY_MODEL


def resolve_checkpoint(config) -> Path:
    """Local directory of `config.model`: `tiny`, an existing folder, or a hub id fetched into the HF cache.

    `config` is any backend config with `model`, `revision` and `local_files_only` fields.
    """
    if config.model == TINY_MODEL:
        from sole_r1_model.tiny import build_tiny_qwen3vl

        return build_tiny_qwen3vl()
    local = Path(config.model).expanduser()
    if local.is_dir():
        return local
    if config.model.startswith((".", "/", "~")) or config.model.count("/") != 1:
        raise ValueError(f"model {config.model!r} is not an existing folder nor a hub id like 'owner/name'")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(config.model, revision=config.revision,
                                      local_files_only=config.local_files_only))
    except Exception as exc:  # noqa: BLE001 -- hub errors come in many types; all mean "no checkpoint"
        raise ValueError(f"cannot get checkpoint {config.model!r} ({type(exc).__name__}: {exc}); download it "
                         "once with network access (huggingface-cli download ...) or pass a local folder") from exc


def resolve_device(requested: str) -> str:
    """The torch device for a config's `device` ("auto" = cuda if available, else cpu); ValueError without CUDA."""
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} requested but torch sees no CUDA GPU; set device: auto or cpu")
    return device


def torch_dtype(name: str, device: str):
    """The torch dtype for a config's `dtype` ("auto" = bfloat16 on CUDA, float32 elsewhere)."""
    import torch

    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, name)


@dataclasses.dataclass
class LoadedVLM:
    """A checkpoint loaded for inference: where it came from, its processor, the model (eval mode), the device."""

    checkpoint: Path
    processor: Any
    model: Any
    device: str


def load_vlm(config, use_official_image_processor: bool = False,
             image_processor_overrides: Optional[dict] = None) -> LoadedVLM:
    """Resolve, then load the processor (qwen_processor.load_processor) and the model of a backend config.

    `config` needs model, revision, local_files_only, device, dtype and attn_implementation fields.
    """
    from transformers import AutoModelForImageTextToText

    from sole_r1_model.rewarders.qwen_processor import load_processor

    device = resolve_device(config.device)
    checkpoint = resolve_checkpoint(config)
    processor = load_processor(checkpoint, use_official_image_processor, image_processor_overrides)
    model = AutoModelForImageTextToText.from_pretrained(
        str(checkpoint), dtype=torch_dtype(config.dtype, device),
        attn_implementation=config.attn_implementation).to(device).eval()
    return LoadedVLM(checkpoint, processor, model, device)
