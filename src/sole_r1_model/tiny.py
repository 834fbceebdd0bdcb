"""A tiny, randomly initialised Qwen3-VL checkpoint built fully offline, for tests and the CPU demo.

It has the real architecture (vision tower with deepstack mergers, M-RoPE text decoder), a byte-level BPE
tokenizer trained here on a small robotics corpus that carries Qwen's chat and vision special tokens, a
Qwen-style chat template, and the official SOLE-R1 image processor settings, so everything downstream (the
processor, chat template, `generate`, parsing) runs the same code path as the 8B model. Its answers are
random text; that is the point -- callers must survive garbage.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Optional, Sequence

TINY_FORMAT_VERSION = 1
MARKER_FILE = "sole_r1_tiny.json"

# Qwen's control tokens (special: dropped by skip_special_tokens) ...
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
# ... and the reasoning tags, kept as whole tokens but *not* special so decoded text keeps them.
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]

# A Qwen-format chat template (system string; user content = image placeholder(s) + text; assistant prompt).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif item['type'] == 'text' -%}{{- item['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

_CORPUS = [
    "You are an expert roboticist predicting task progress percentages from frames of a robot video.",
    "Here is an image containing multiple camera views of a robot attempting to complete a task.",
    "The views on the top are from an external camera. The views on the bottom are from the wrist camera.",
    "The views from the very first timestep are shown to the left, the previous timestep in the middle and "
    "the current timestep to the right.",
    "The task description is: Pick up the cube from the table. Open the drawer. Push the button.",
    "The task progress for the very first timestep is 0%. Predict the task progress for the current timestep.",
    "<think>The gripper moved closer to the red cube and is now aligned above it.</think><answer>35%</answer>",
    "<think>The robot lifted the cube off the table; the task is nearly done.</think><answer>90%</answer>",
]


@dataclasses.dataclass(frozen=True)
class TinyQwen3VLSpec:
    """Sizes of the tiny model (defaults give ~1.2 M parameters, a CPU forward in tens of ms)."""

    vocab_size: int = 2048
    text_hidden: int = 128
    text_layers: int = 2
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 512
    vision_hidden: int = 64
    vision_depth: int = 2
    vision_heads: int = 4
    vision_intermediate: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.text_hidden % self.text_heads or self.text_heads % self.text_kv_heads:
            raise ValueError("text_hidden must divide by text_heads, and text_heads by text_kv_heads")
        if (self.text_hidden // self.text_heads) % 8:
            raise ValueError("text head_dim (text_hidden / text_heads) must be a multiple of 8 for M-RoPE")
        if self.vision_hidden % self.vision_heads or self.vision_depth < 2:
            raise ValueError("vision_hidden must divide by vision_heads and vision_depth must be >= 2")
        if self.vocab_size < 300:
            raise ValueError("vocab_size must be >= 300 (256 byte symbols + special tokens + merges)")


def default_tiny_path() -> Path:
    """Where `model: tiny` lives unless SOLE_R1_TINY_MODEL says otherwise."""
    override = os.environ.get("SOLE_R1_TINY_MODEL")
    return Path(override) if override else Path.home() / ".cache" / "sole_r1" / f"tiny-qwen3vl-v{TINY_FORMAT_VERSION}"


def corpus_digest(corpus: Sequence[str]) -> str:
    """A short digest of extra tokenizer texts, recorded in the marker so another corpus means another build."""
    digest = hashlib.sha256()
    for text in corpus:
        digest.update(text.encode("utf-8", "replace") + b"\0")
    return digest.hexdigest()[:16]


def is_built(path: Path, spec: TinyQwen3VLSpec = TinyQwen3VLSpec(), corpus: Sequence[str] = ()) -> bool:
    """True when `path` holds a complete tiny checkpoint of this format version, spec and tokenizer corpus."""
    marker = Path(path) / MARKER_FILE
    if not marker.is_file():
        return False
    try:
        saved = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return saved == _marker(spec, corpus)


def _marker(spec: TinyQwen3VLSpec, corpus: Sequence[str]) -> dict:
    marker = {"version": TINY_FORMAT_VERSION, "spec": dataclasses.asdict(spec)}
    if corpus:
        marker["corpus"] = corpus_digest(corpus)
    return marker


def build_tiny_qwen3vl(path: os.PathLike | str | None = None, spec: TinyQwen3VLSpec = TinyQwen3VLSpec(),
                       corpus: Sequence[str] = ()) -> Path:
    """Build the tiny checkpoint at `path` (skipped if already built) and return the path.

    `corpus`: extra texts the tokenizer learns its merges from (e.g. a training set's prompts and reasoning), so a
    model trained from scratch reads and writes them in few tokens.
    """
    path = Path(path) if path is not None else default_tiny_path()
    corpus = list(corpus)
    if is_built(path, spec, corpus):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so parallel test workers never see a half-written checkpoint.
    staging = path.parent / f".{path.name}.building-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        _write_checkpoint(staging, spec, corpus)
        (staging / MARKER_FILE).write_text(json.dumps(_marker(spec, corpus)))
        if path.exists() and not is_built(path, spec, corpus):
            shutil.rmtree(path)  # stale build of another version/spec
        try:
            os.rename(staging, path)
        except OSError:
            if not is_built(path, spec, corpus):  # lost a race to a worker that built it: fine; anything else: raise
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _train_tokenizer(spec: TinyQwen3VLSpec, corpus: Sequence[str] = ()):
    """Train a byte-level BPE tokenizer on the small corpus (plus `corpus`) and wrap it as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=spec.vocab_size - len(TAG_TOKENS), special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    numbers = [f"{n}%" for n in range(-100, 101)]
    bpe.train_from_iterator(_CORPUS * 4 + numbers + list(corpus), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                        padding_side="left", chat_template=CHAT_TEMPLATE)
    tokenizer.add_tokens(TAG_TOKENS)
    return tokenizer


def tiny_qwen3vl_config(spec: TinyQwen3VLSpec = TinyQwen3VLSpec(), vocab_size: Optional[int] = None,
                        token_ids: Optional[dict[str, int]] = None):
    """Qwen3VLConfig with the tiny sizes; `token_ids` maps image/video/vision_start/vision_end to ids.

    Without a tokenizer (e.g. the latency benchmark) the four vision ids default to the last ids of the vocab.
    """
    from transformers import Qwen3VLConfig

    from sole_r1_model.rewarders.qwen_processor import OFFICIAL_IMAGE_PROCESSOR

    vocab_size = vocab_size or spec.vocab_size
    ids = token_ids or {"image": vocab_size - 4, "video": vocab_size - 3, "vision_start": vocab_size - 2,
                        "vision_end": vocab_size - 1}
    head_dim = spec.text_hidden // spec.text_heads
    quarter = head_dim // 8  # M-RoPE splits head_dim/2 frequencies over (time, height, width)
    return Qwen3VLConfig(
        text_config={
            "vocab_size": vocab_size, "hidden_size": spec.text_hidden,
            "intermediate_size": spec.text_intermediate, "num_hidden_layers": spec.text_layers,
            "num_attention_heads": spec.text_heads, "num_key_value_heads": spec.text_kv_heads,
            "head_dim": head_dim, "max_position_embeddings": 8192, "tie_word_embeddings": False,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5_000_000.0,
                                "mrope_section": [2 * quarter, quarter, quarter], "mrope_interleaved": True},
        },
        vision_config={
            "depth": spec.vision_depth, "hidden_size": spec.vision_hidden, "num_heads": spec.vision_heads,
            "intermediate_size": spec.vision_intermediate, "out_hidden_size": spec.text_hidden,
            "patch_size": OFFICIAL_IMAGE_PROCESSOR["patch_size"],
            "spatial_merge_size": OFFICIAL_IMAGE_PROCESSOR["merge_size"],
            "temporal_patch_size": OFFICIAL_IMAGE_PROCESSOR["temporal_patch_size"],
            "num_position_embeddings": 2304, "deepstack_visual_indexes": [spec.vision_depth - 1],
        },
        image_token_id=ids["image"], video_token_id=ids["video"],
        vision_start_token_id=ids["vision_start"], vision_end_token_id=ids["vision_end"],
        tie_word_embeddings=False,
    )


def _write_checkpoint(directory: Path, spec: TinyQwen3VLSpec, corpus: Sequence[str] = ()) -> None:
    """Write tokenizer, chat template, image processor settings, config and random weights."""
    import torch
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration

    from sole_r1_model.rewarders.qwen_processor import OFFICIAL_IMAGE_PROCESSOR, build_processor

    tokenizer = _train_tokenizer(spec, corpus)
    processor = build_processor(tokenizer, CHAT_TEMPLATE, "qwen3_vl", OFFICIAL_IMAGE_PROCESSOR)
    tokenizer.save_pretrained(str(directory))
    processor.image_processor.save_pretrained(str(directory))
    (directory / "chat_template.jinja").write_text(CHAT_TEMPLATE)

    torch.manual_seed(spec.seed)
    ids = tokenizer.convert_tokens_to_ids
    token_ids = {name: ids(f"<|{name}_pad|>" if name in ("image", "video") else f"<|{name}|>")
                 for name in ("image", "video", "vision_start", "vision_end")}
    model = Qwen3VLForConditionalGeneration(tiny_qwen3vl_config(spec, len(tokenizer), token_ids)).eval()
    # Sampling defaults as the official server (temperature 1.0, top_p 0.9, top_k 50).
    model.generation_config = GenerationConfig(
        do_sample=True, temperature=1.0, top_p=0.9, top_k=50, max_new_tokens=200,
        eos_token_id=[ids("<|im_end|>"), ids("<|endoftext|>")], pad_token_id=ids("<|endoftext|>"))
    model.save_pretrained(str(directory))
