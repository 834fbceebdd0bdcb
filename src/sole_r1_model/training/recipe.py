"""Training recipes: typed, validated dataclasses read from one YAML file, with `section.key=value` overrides.

A recipe has one section per concern (model, data, lora, optim, schedule, grpo); `sole-r1 train sft` ignores the
`grpo` section. Each field's default is defined here and nowhere else (config/training/*.yaml restate what they
change). Unknown keys are errors that name the key; override values are read as YAML and then converted to the
field's type, so `--set optim.learning_rate=1e-3` is a float, not the string YAML 1.1 would make of it.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any, Optional, Union

import yaml

_DTYPES = ("auto", "bfloat16", "float16", "float32")
_PRECISIONS = ("auto", "bf16", "fp32")


def _positive_int(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


@dataclasses.dataclass
class ModelRecipe:
    """Which checkpoint to start from and how to load it."""

    path: str = "tiny"              # hub id, local folder, "tiny" (offline random Qwen3-VL) or "scratch"
    revision: Optional[str] = None  # hub revision when `path` is a hub id
    scratch: dict = dataclasses.field(default_factory=dict)  # TinyQwen3VLSpec sizes when path is "scratch"
    dtype: str = "auto"             # weights: auto = bfloat16 for LoRA on GPU, else float32 (bf16 autocast on GPU)
    attn_implementation: str = "sdpa"
    image_min_pixels: Optional[int] = None  # processor bounds (None = the checkpoint's); saved with the result
    image_max_pixels: Optional[int] = None  # smaller = fewer image tokens (small models trained from scratch)

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.strip():
            raise ValueError("model.path must be a hub id, a checkpoint folder, 'tiny' or 'scratch'")
        if self.dtype not in _DTYPES:
            raise ValueError(f"model.dtype must be one of {_DTYPES}, got {self.dtype!r}")
        if not isinstance(self.scratch, dict):
            raise ValueError("model.scratch must be a mapping of TinyQwen3VLSpec sizes")
        for name in ("image_min_pixels", "image_max_pixels"):
            if getattr(self, name) is not None:
                _positive_int(f"model.{name}", getattr(self, name))
        if self.image_min_pixels and self.image_max_pixels and self.image_min_pixels > self.image_max_pixels:
            raise ValueError("model.image_min_pixels must be <= model.image_max_pixels")


@dataclasses.dataclass
class DataRecipe:
    """Datasets written by `sole-r1 synth` (datasets.save_to_disk folders), concatenated in order."""

    train: list = dataclasses.field(default_factory=list)  # one or more dataset folders
    eval: list = dataclasses.field(default_factory=list)   # held-out folders; empty = split eval_fraction off train
    eval_fraction: float = 0.0      # share of train held out when `eval` is empty (0 = no evaluation)
    max_examples: Optional[int] = None  # use a random subset of this many training rows
    max_length: Optional[int] = None    # truncate longer sequences (tokens); None = never truncate

    def __post_init__(self) -> None:
        for name in ("train", "eval"):
            value = getattr(self, name)
            if isinstance(value, (str, os.PathLike)):
                setattr(self, name, [os.fspath(value)])
            elif not isinstance(value, list) or not all(isinstance(v, (str, os.PathLike)) for v in value):
                raise ValueError(f"data.{name} must be a folder or a list of folders")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"data.eval_fraction must be in [0, 1), got {self.eval_fraction!r}")
        if self.max_examples is not None:
            _positive_int("data.max_examples", self.max_examples)
        if self.max_length is not None:
            _positive_int("data.max_length", self.max_length, 16)


@dataclasses.dataclass
class LoraRecipe:
    """LoRA adapters (peft) on the language model; merged into the weights of the exported checkpoint."""

    enabled: bool = False           # False = full fine-tuning
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # The text decoder's projections; Qwen-VL vision blocks name theirs differently (qkv, proj, linear_fc*).
    target_modules: list = dataclasses.field(default_factory=lambda: [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])

    def __post_init__(self) -> None:
        _positive_int("lora.r", self.r)
        _positive_int("lora.alpha", self.alpha)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout!r}")
        if not self.target_modules or "lm_head" in self.target_modules:
            raise ValueError("lora.target_modules must be non-empty and must not hold lm_head (TRL cannot train it)")


@dataclasses.dataclass
class OptimRecipe:
    """Optimiser and batch sizes (per device; the global batch is this x devices x accumulation)."""

    learning_rate: float = 1e-5
    weight_decay: float = 0.0
    lr_scheduler: str = "cosine"
    warmup: float = 0.03            # < 1: share of the steps; >= 1: number of steps
    max_grad_norm: float = 1.0
    optimizer: str = "adamw_torch"
    per_device_batch_size: int = 1  # GRPO: completions per device per step (a multiple of grpo.num_generations)
    gradient_accumulation_steps: int = 1

    def __post_init__(self) -> None:
        if not self.learning_rate > 0:
            raise ValueError(f"optim.learning_rate must be > 0, got {self.learning_rate!r}")
        if self.warmup < 0 or self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ValueError("optim.warmup, optim.weight_decay and optim.max_grad_norm must be >= 0")
        _positive_int("optim.per_device_batch_size", self.per_device_batch_size)
        _positive_int("optim.gradient_accumulation_steps", self.gradient_accumulation_steps)


@dataclasses.dataclass
class ScheduleRecipe:
    """How long to train, how often to log, evaluate and checkpoint, and on what hardware settings."""

    max_steps: int = -1             # -1 = run num_epochs
    num_epochs: float = 1.0
    save_steps: int = 500           # checkpoint-N folders (resume points) every N steps
    save_total_limit: Optional[int] = 3
    logging_steps: int = 10
    eval_steps: Optional[int] = None  # None = same as save_steps
    seed: int = 0
    precision: str = "auto"         # auto = bf16 on a GPU that supports it, fp32 otherwise
    gradient_checkpointing: bool = False
    report_to: list = dataclasses.field(default_factory=lambda: ["tensorboard"])
    progress_bar: bool = True
    dataloader_workers: int = 0

    def __post_init__(self) -> None:
        if self.max_steps != -1:
            _positive_int("schedule.max_steps", self.max_steps)
        if not self.num_epochs > 0:
            raise ValueError(f"schedule.num_epochs must be > 0, got {self.num_epochs!r}")
        for name in ("save_steps", "logging_steps"):
            _positive_int(f"schedule.{name}", getattr(self, name))
        if self.eval_steps is not None:
            _positive_int("schedule.eval_steps", self.eval_steps)
        if self.save_total_limit is not None:
            _positive_int("schedule.save_total_limit", self.save_total_limit)
        if self.precision not in _PRECISIONS:
            raise ValueError(f"schedule.precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if isinstance(self.report_to, str):
            self.report_to = [self.report_to]
        self.report_to = [str(name) for name in self.report_to if name not in ("none", None)]
        _positive_int("schedule.dataloader_workers", self.dataloader_workers, 0)


@dataclasses.dataclass
class GRPORecipe:
    """GRPO sampling, KL and reward weights (rewards.py documents each reward)."""

    num_generations: int = 8        # completions per prompt (the group)
    beta: float = 0.04              # KL penalty towards the starting checkpoint (0 = no reference model)
    temperature: float = 1.0        # sampling as the official reward server
    top_p: float = 0.9
    top_k: int = 50
    max_completion_length: int = 200
    num_iterations: int = 1         # policy updates per generation batch
    format_weight: float = 0.2      # weight of rewards.format_reward
    accuracy_weight: float = 1.0    # weight of rewards.progress_accuracy_reward
    tolerance: float = 0.0          # percentage points within which the accuracy reward is full
    length_weight: float = 0.0      # weight of rewards.length_penalty (0 = off)
    length_target: int = 185        # completions longer than this many tokens are penalised

    def __post_init__(self) -> None:
        _positive_int("grpo.num_generations", self.num_generations, 2)
        _positive_int("grpo.max_completion_length", self.max_completion_length)
        _positive_int("grpo.num_iterations", self.num_iterations)
        _positive_int("grpo.length_target", self.length_target)
        _positive_int("grpo.top_k", self.top_k, 0)
        if self.beta < 0 or self.tolerance < 0 or not self.temperature > 0 or not 0 < self.top_p <= 1:
            raise ValueError("need grpo.beta >= 0, grpo.tolerance >= 0, grpo.temperature > 0, 0 < grpo.top_p <= 1")
        if min(self.format_weight, self.accuracy_weight, self.length_weight) < 0:
            raise ValueError("grpo reward weights must be >= 0")


@dataclasses.dataclass
class Recipe:
    """One training run: where to write, and every section above."""

    output_dir: str = "runs/train"
    model: ModelRecipe = dataclasses.field(default_factory=ModelRecipe)
    data: DataRecipe = dataclasses.field(default_factory=DataRecipe)
    lora: LoraRecipe = dataclasses.field(default_factory=LoraRecipe)
    optim: OptimRecipe = dataclasses.field(default_factory=OptimRecipe)
    schedule: ScheduleRecipe = dataclasses.field(default_factory=ScheduleRecipe)
    grpo: GRPORecipe = dataclasses.field(default_factory=GRPORecipe)

    def to_dict(self) -> dict:
        """Plain nested dict (what `save` writes and `from_dict` reads)."""
        return dataclasses.asdict(self)

    def save(self, path: os.PathLike | str) -> None:
        """Write the resolved recipe as YAML (kept beside checkpoints for provenance)."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Convert a YAML value to a field's annotated type (str numbers to float/int; a scalar to a one-item list)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("null", "none")):
            return None
        return _coerce(value, options[0], where)
    if annotation is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation in (int, float):
        if isinstance(value, bool):
            raise ValueError(f"{where} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be a number, got {value!r}") from None
        if annotation is int:
            if number != int(number):
                raise ValueError(f"{where} must be an integer, got {value!r}")
            return int(number)
        return number
    if annotation is list or origin is list:
        return value if isinstance(value, list) else [value]
    if annotation is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _build(cls: type, data: Any, where: str):
    """Instantiate dataclass `cls` from a mapping, recursing into section dataclasses."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'recipe'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else str(key)
        if key not in fields:
            raise ValueError(f"unknown recipe key {name!r}; valid keys here: {sorted(fields)}")
        hint = hints[key]
        kwargs[key] = _build(hint, value, name) if dataclasses.is_dataclass(hint) else _coerce(value, hint, name)
    return cls(**kwargs)


def apply_override(data: dict, assignment: str) -> None:
    """Apply one `section.key=value` override (value parsed as YAML) to a nested recipe dict, in place."""
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {assignment!r} must look like section.key=value, e.g. optim.learning_rate=1e-4")
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"override {assignment!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = yaml.safe_load(text) if text.strip() else None


def from_dict(data: dict, overrides: tuple = ()) -> Recipe:
    """A validated Recipe from a nested dict plus `section.key=value` overrides (applied in order)."""
    data = yaml.safe_load(yaml.safe_dump(data or {}))  # deep copy of plain data
    for assignment in overrides:
        apply_override(data, assignment)
    return _build(Recipe, data, "")


def load_recipe(path: Optional[os.PathLike | str] = None, overrides: tuple = ()) -> Recipe:
    """Read a recipe YAML (or start from the defaults when `path` is None) and apply overrides."""
    data: dict = {}
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"recipe {path} not found (ship recipes live in config/training/)")
        data = yaml.safe_load(path.read_text()) or {}
    try:
        return from_dict(data, overrides)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path or 'recipe'}: {exc}") from exc
