"""Typed, validated configurations of the rewarder backends, and loading them from dicts and YAML files.

One dataclass per backend; each field's default is the one place that default is defined (the YAML files in
config/rewarders/ only restate them for readers). Unknown keys are errors that name the key. A `module:Class`
backend names any importable Rewarder subclass; its options become constructor keyword arguments.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import math
import os
import re
from pathlib import Path
from typing import Any, Optional, Union

from sole_r1_config import config_dir
from sole_r1_model.composite import VARIANTS

DEFAULT_SOLE_R1_MODEL = "Philip-MIT/SOLE-R1-8B"
TINY_MODEL = "tiny"  # `model: tiny` = the offline random Qwen3-VL of sole_r1_model.tiny (built on first use)
_DTYPES = ("auto", "bfloat16", "float16", "float32")
_ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3")
_DECODE = ("generate", "static")
_COMPILE_DECODE = ("auto", "off", "default", "reduce-overhead", "max-autotune")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown prompt variant {variant!r}; choose one of {sorted(VARIANTS)}")


@dataclasses.dataclass
class SamplingConfig:
    """Sampling settings shared by the model backends (defaults: the official reward server's)."""

    temperature: float = 1.0        # 0 = greedy decoding
    top_p: float = 0.9
    top_k: Optional[int] = 50       # None = do not send/apply top-k (some hosted APIs reject it)
    max_new_tokens: int = 200

    def __post_init__(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.top_k is not None and (int(self.top_k) != self.top_k or self.top_k < 0):
            raise ValueError(f"top_k must be an integer >= 0 or null, got {self.top_k!r}")
        if int(self.max_new_tokens) != self.max_new_tokens or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")


@dataclasses.dataclass
class HFRewarderConfig(SamplingConfig):
    """`sole_r1` backend: a Qwen3-VL-family checkpoint run with transformers `generate`."""

    model: str = DEFAULT_SOLE_R1_MODEL   # hub id, local checkpoint directory, or "tiny"
    revision: Optional[str] = None       # hub revision (branch, tag or commit) when `model` is a hub id
    local_files_only: bool = False       # never contact the hub: the checkpoint must be in the HF cache already
    dtype: str = "auto"                  # auto = bfloat16 on GPU, float32 on CPU
    device: str = "auto"                 # auto = cuda if available, else cpu; or "cpu", "cuda", "cuda:1"
    attn_implementation: str = "sdpa"
    max_batch_size: int = 8              # queries per `generate` call; larger batches are split
    variant: str = "full"                # composite/prompt layout (see sole_r1_model.composite.VARIANTS)
    seed: Optional[int] = None           # seeds torch once at load, for reproducible sampling
    use_official_image_processor: bool = True   # the settings the official server installs into the checkpoint
    image_processor_overrides: dict = dataclasses.field(default_factory=dict)
    # Force the official answer format `<think>...</think><answer>N%</answer>` with a token-level constraint; the
    # model still chooses the reasoning tokens (at most max_think_tokens, and fewer when max_new_tokens leaves no
    # room for the answer) and the integer. Useful for weak or tiny models; never changes the answer of a good
    # model that writes the format on its own within the think budget.
    constrain_format: bool = False
    max_think_tokens: int = 185  # the official Lift traces reach ~170 tokens: leave them room
    decode: str = "generate"     # "static": static-KV-cache decode loop (fast_decode.py) instead of `generate`
    compile_decode: str = "auto"  # static decode step compilation: auto (reduce-overhead on CUDA, eager on CPU),
    #                               off, or a torch.compile mode (default, reduce-overhead, max-autotune)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.constrain_format, bool):
            raise ValueError(f"constrain_format must be true or false, got {self.constrain_format!r}")
        if isinstance(self.max_think_tokens, bool) or int(self.max_think_tokens) != self.max_think_tokens \
                or self.max_think_tokens < 1:
            raise ValueError(f"max_think_tokens must be an integer >= 1, got {self.max_think_tokens!r}")
        if self.decode not in _DECODE:
            raise ValueError(f"decode must be one of {_DECODE}, got {self.decode!r}")
        if self.compile_decode not in _COMPILE_DECODE:
            raise ValueError(f"compile_decode must be one of {_COMPILE_DECODE}, got {self.compile_decode!r}")
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("model must be a hub id (e.g. Philip-MIT/SOLE-R1-8B), a checkpoint folder or 'tiny'")
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {self.dtype!r}")
        if self.attn_implementation not in _ATTENTION:
            raise ValueError(f"attn_implementation must be one of {_ATTENTION}, got {self.attn_implementation!r}")
        if not isinstance(self.device, str) or not (
                self.device in ("auto", "cpu", "cuda", "mps") or self.device.startswith("cuda:")):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}")
        if int(self.max_batch_size) != self.max_batch_size or self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be an integer >= 1, got {self.max_batch_size!r}")
        if not isinstance(self.image_processor_overrides, dict):
            raise ValueError("image_processor_overrides must be a mapping of image processor settings")
        _check_variant(self.variant)


@dataclasses.dataclass
class OpenAIRewarderConfig(SamplingConfig):
    """`openai` backend: any OpenAI-compatible /v1/chat/completions endpoint (vLLM, SGLang, hosted APIs)."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = DEFAULT_SOLE_R1_MODEL   # the model name the server knows
    api_key_env: Optional[str] = "OPENAI_API_KEY"  # env var holding the key; unset variable = no auth header
    max_tokens_field: str = "max_tokens"  # newer OpenAI models want "max_completion_tokens"
    timeout_s: float = 60.0              # per HTTP attempt
    max_retries: int = 3                 # extra attempts after a 429/5xx, a timeout or a refused connection
    backoff_s: float = 0.5               # first retry delay; doubles each retry
    backoff_max_s: float = 8.0
    max_concurrency: int = 4             # queries of one batch sent in parallel
    variant: str = "full"
    extra_body: dict = dataclasses.field(default_factory=dict)  # merged into every request body

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if self.max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ValueError("max_tokens_field must be max_tokens or max_completion_tokens")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s!r}")
        if int(self.max_retries) != self.max_retries or self.max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")
        if self.backoff_s < 0 or self.backoff_max_s < self.backoff_s:
            raise ValueError("need 0 <= backoff_s <= backoff_max_s")
        if int(self.max_concurrency) != self.max_concurrency or self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be an integer >= 1, got {self.max_concurrency!r}")
        if not isinstance(self.extra_body, dict):
            raise ValueError("extra_body must be a mapping merged into the request JSON")
        _check_variant(self.variant)


@dataclasses.dataclass
class ZMQRewarderConfig:
    """`zmq` backend: a server speaking the official SOLE-R1 ZeroMQ protocol (`sole-r1 serve`, the official
    philipmit/sole-r1-model reward_server)."""

    endpoint: str = "tcp://127.0.0.1:8001"   # ZeroMQ address of the server (REQ -> REP)
    service: str = "rewards"                  # interface name (the official server's `service_name`)
    timeout_s: float = 60.0                   # per request; a late reply counts as a failed query
    temperature: float = 1.0                  # sent with every request (the official client's default)
    from_zero: bool = False                   # one model call per query in the from_zero layout (first | current)
    max_reply_bytes: int = 64 << 20           # decompressed reply limit (replies carry text, not images)

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint, str) or not self.endpoint.startswith(("tcp://", "ipc://")):
            raise ValueError(f"endpoint must look like tcp://HOST:PORT (or ipc://PATH), got {self.endpoint!r}")
        if not isinstance(self.service, str) or not self.service:
            raise ValueError("service must be the server's interface name, e.g. rewards")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s!r}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if not isinstance(self.from_zero, bool):
            raise ValueError(f"from_zero must be true or false, got {self.from_zero!r}")
        if int(self.max_reply_bytes) != self.max_reply_bytes or self.max_reply_bytes < 1024:
            raise ValueError(f"max_reply_bytes must be an integer >= 1024, got {self.max_reply_bytes!r}")


@dataclasses.dataclass
class OracleRewarderConfig:
    """`oracle` backend: the simulator's privileged progress (a diagnostic upper bound, never a real reward)."""

    def __post_init__(self) -> None:
        pass  # no options; the dataclass exists so unknown keys are rejected like for the other backends


BACKEND_CONFIGS: dict[str, type] = {
    "sole_r1": HFRewarderConfig,
    "openai": OpenAIRewarderConfig,
    "zmq": ZMQRewarderConfig,
    "oracle": OracleRewarderConfig,
}
RewarderConfig = Union[HFRewarderConfig, OpenAIRewarderConfig, ZMQRewarderConfig, OracleRewarderConfig]
CLASS_SPEC = re.compile(r"^[\w.]+:\w+$")  # `package.module:Class`


def rewarder_class(spec: str) -> type:
    """Import the class named by a `module:Class` spec; ValueError naming the spec unless it is a Rewarder."""
    from sole_r1_model.rewarder import Rewarder

    module_name, _, class_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 -- any import failure means the same thing: the spec is unusable
        raise ValueError(f"rewarder spec {spec!r}: cannot import module {module_name!r} "
                         f"({type(exc).__name__}: {exc}); is it installed and on PYTHONPATH?") from exc
    found = getattr(module, class_name, None)
    if not (isinstance(found, type) and issubclass(found, Rewarder)) or inspect.isabstract(found):
        what = (f"module {module_name!r} has no attribute {class_name!r}" if found is None
                else f"{module_name}.{class_name} is {found!r}, not a concrete Rewarder subclass")
        raise ValueError(f"rewarder spec {spec!r}: {what}; name a concrete subclass of "
                         "sole_r1_model.rewarder.Rewarder")
    return found


@functools.lru_cache(maxsize=None)
def _options_type(spec: str, keys: tuple[str, ...]) -> type:
    # Cached so that two resolutions of the same spec compare equal (dataclass equality checks the type).
    name = spec.partition(":")[2] + "Options"
    return dataclasses.make_dataclass(name, [(key, Any) for key in keys], frozen=True)


def class_options(spec: str, options: dict[str, Any]):
    """The constructor keyword arguments of a `module:Class` rewarder, as a dataclass with one field per option."""
    rewarder = rewarder_class(spec)
    for key in options:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"rewarder spec {spec!r}: option {key!r} is not a valid keyword argument name")
    try:
        inspect.signature(rewarder).bind(**options)
    except TypeError as exc:  # unknown or missing constructor arguments: say so before building anything
        raise ValueError(f"rewarder spec {spec!r}: options {sorted(options)} do not fit "
                         f"{rewarder.__name__}{inspect.signature(rewarder)} ({exc})") from exc
    except ValueError:
        pass  # no introspectable signature (e.g. a C extension): the constructor call will check
    return _options_type(spec, tuple(options))(**options)


def config_from_dict(spec: dict[str, Any]) -> tuple[str, RewarderConfig]:
    """Build (backend, config) from `{"backend": name, **options}`; unknown backends/keys raise ValueError."""
    if not isinstance(spec, dict):
        raise ValueError(f"a rewarder spec must be a mapping, got {type(spec).__name__}")
    options = dict(spec)
    backend = options.pop("backend", None)
    if isinstance(backend, str) and CLASS_SPEC.match(backend):
        return backend, class_options(backend, options)
    if backend not in BACKEND_CONFIGS:
        raise ValueError(f"rewarder spec needs 'backend' set to one of {sorted(BACKEND_CONFIGS)} or to "
                         f"'module:Class' (a Rewarder subclass), got {backend!r}")
    config_class = BACKEND_CONFIGS[backend]
    known = {f.name for f in dataclasses.fields(config_class)}
    for key in options:
        if key not in known:
            raise ValueError(f"unknown key {key!r} for rewarder backend {backend!r}; valid keys: {sorted(known)}")
    return backend, config_class(**options)


def load_config_file(path: os.PathLike | str) -> tuple[str, RewarderConfig]:
    """Read a rewarder YAML file (a flat mapping with `backend` and options)."""
    import yaml

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"rewarder config {path} not found")
    with path.open() as stream:
        data = yaml.safe_load(stream)
    model = data.get("model") if isinstance(data, dict) else None
    if isinstance(model, str) and not Path(model).expanduser().is_absolute() and (path.parent / model).exists():
        # A model folder named relative to the YAML (e.g. `model: .` beside exported weights): the YAML and the
        # weights move together. Hub ids (which do not exist beside the file) stay as written.
        data = {**data, "model": str((path.parent / model).resolve())}
    try:
        return config_from_dict(data if data is not None else {})
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


def resolve_spec(spec: Union[str, os.PathLike, dict]) -> tuple[str, RewarderConfig]:
    """(backend, config) from a backend name, `module:Class`, a `{"backend": ...}` dict, a YAML path or a name."""
    if isinstance(spec, dict):
        return config_from_dict(spec)
    if not isinstance(spec, (str, os.PathLike)):
        raise ValueError(f"rewarder spec must be a backend name, a mapping or a YAML path, got {type(spec).__name__}")
    text = os.fspath(spec)
    if text in BACKEND_CONFIGS:
        return text, BACKEND_CONFIGS[text]()
    if CLASS_SPEC.match(text):
        return text, class_options(text, {})
    if Path(text).expanduser().is_file():
        return load_config_file(text)
    named = config_dir() / "rewarders" / f"{text}.yaml"
    if "/" not in text and named.is_file():
        return load_config_file(named)
    raise ValueError(f"rewarder spec {text!r} is neither a backend ({', '.join(sorted(BACKEND_CONFIGS))}), "
                     f"'module:Class', an existing YAML file, nor a name under {named.parent}")
