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

from sole_r1_config import config_dir, models_dir
from sole_r1_model.composite import VARIANTS

DEFAULT_SOLE_R1_MODEL = "Philip-MIT/SOLE-R1-8B"
TINY_MODEL = "tiny"  # `model: tiny` = the offline random Qwen3-VL of sole_r1_model.tiny (built on first use)
_DTYPES = ("auto", "bfloat16", "float16", "float32")
_ATTENTION = ("sdpa", "eager", "flash_attention_2", "flash_attention_3")
_DECODE = ("generate", "static")
_COMPILE_DECODE = ("auto", "off", "default", "reduce-overhead", "max-autotune")
# `prompt` of the API backends: the SOLE-R1 composite prompt, or the paper's GPT/Gemini baseline prompt
# (sole_r1_model/rewarders/baseline_prompt.py).
PROMPTS = ("sole_r1", "official_baseline")
DEFAULT_GEMINI_MODEL = "gemini-3-pro-preview"  # the paper's Gemini baseline
_THINKING_LEVELS = ("minimal", "low", "medium", "high")


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown prompt variant {variant!r}; choose one of {sorted(VARIANTS)}")


def _check_prompt(prompt: str) -> None:
    if prompt not in PROMPTS:
        raise ValueError(f"prompt must be one of {PROMPTS}, got {prompt!r}")


def _check_transport(config) -> None:
    """Validate the timeout / retry / concurrency fields that the remote backends share."""
    if not config.timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {config.timeout_s!r}")
    if int(config.max_retries) != config.max_retries or config.max_retries < 0:
        raise ValueError(f"max_retries must be an integer >= 0, got {config.max_retries!r}")
    if config.backoff_s < 0 or config.backoff_max_s < config.backoff_s:
        raise ValueError("need 0 <= backoff_s <= backoff_max_s")
    concurrency = getattr(config, "max_concurrency", 1)
    if int(concurrency) != concurrency or concurrency < 1:
        raise ValueError(f"max_concurrency must be an integer >= 1, got {concurrency!r}")


def _check_transformers_loading(config) -> None:
    """Validate the fields every backend that loads a checkpoint with transformers shares."""
    if not isinstance(config.model, str) or not config.model.strip():
        raise ValueError("model must be a hub id (e.g. Philip-MIT/SOLE-R1-8B), a checkpoint folder or 'tiny'")
    if config.dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {config.dtype!r}")
    if config.attn_implementation not in _ATTENTION:
        raise ValueError(f"attn_implementation must be one of {_ATTENTION}, got {config.attn_implementation!r}")
    if not isinstance(config.device, str) or not (
            config.device in ("auto", "cpu", "cuda", "mps") or config.device.startswith("cuda:")):
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {config.device!r}")
    if int(config.max_batch_size) != config.max_batch_size or config.max_batch_size < 1:
        raise ValueError(f"max_batch_size must be an integer >= 1, got {config.max_batch_size!r}")
    if not isinstance(config.image_processor_overrides, dict):
        raise ValueError("image_processor_overrides must be a mapping of image processor settings")


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
        _check_transformers_loading(self)
        _check_variant(self.variant)


DEFAULT_TOPREWARD_MODEL = "Qwen/Qwen3-VL-8B-Instruct"  # TOPReward's (and LeRobot's) default backbone
DEFAULT_ROBOREWARD_MODEL = "teetone/RoboReward-8B"
TOPREWARD_MAPPINGS = ("true_vs_false", "true")
_CAMERAS = ("external", "wrist")


@dataclasses.dataclass
class TOPRewardConfig:
    """`topreward` backend: TOPReward's progress from the probability a Qwen-VL model gives the answer "True"."""

    model: str = DEFAULT_TOPREWARD_MODEL  # any Qwen-VL checkpoint: hub id, local folder, or "tiny"
    revision: Optional[str] = None        # hub revision (branch, tag or commit) when `model` is a hub id
    local_files_only: bool = False        # never contact the hub: the checkpoint must be in the HF cache already
    dtype: str = "auto"                   # auto = bfloat16 on GPU, float32 on CPU (log-probs are taken in float32)
    device: str = "auto"                  # auto = cuda if available, else cpu; or "cpu", "cuda", "cuda:1"
    attn_implementation: str = "sdpa"
    max_batch_size: int = 8               # queries per forward pass; larger batches are split
    camera: str = "external"              # whose (first, previous, current) frames the model sees: external | wrist
    mapping: str = "true_vs_false"        # progress = 100 P(True) / (P(True) + P(False)); "true": 100 P(True)
    add_chat_template: bool = False       # TOPReward's option: ask in a chat turn, score "True" as the reply
    image_processor_overrides: dict = dataclasses.field(default_factory=dict)  # over the checkpoint's settings

    def __post_init__(self) -> None:
        _check_transformers_loading(self)
        if self.camera not in _CAMERAS:
            raise ValueError(f"camera must be one of {_CAMERAS}, got {self.camera!r}")
        if self.mapping not in TOPREWARD_MAPPINGS:
            raise ValueError(f"mapping must be one of {TOPREWARD_MAPPINGS}, got {self.mapping!r}")
        if not isinstance(self.add_chat_template, bool):
            raise ValueError(f"add_chat_template must be true or false, got {self.add_chat_template!r}")


@dataclasses.dataclass
class RoboRewardConfig(SamplingConfig):
    """`roboreward` backend: RoboReward's discrete 1-5 end-of-episode score, generated by a Qwen3-VL fine-tune."""

    temperature: float = 0.0              # greedy: the same frames always get the same score
    top_p: float = 1.0
    top_k: Optional[int] = None
    max_new_tokens: int = 16              # the answer is "ANSWER: <score>"
    model: str = DEFAULT_ROBOREWARD_MODEL  # teetone/RoboReward-8B or -4B, a local folder, or "tiny"
    revision: Optional[str] = None
    local_files_only: bool = False
    dtype: str = "auto"                   # auto = bfloat16 on GPU, float32 on CPU
    device: str = "auto"
    attn_implementation: str = "sdpa"
    max_batch_size: int = 8               # queries per `generate` call; larger batches are split
    seed: Optional[int] = None            # seeds torch once at load (matters only when temperature > 0)
    camera: str = "external"              # whose (first, previous, current) frames the model sees: external | wrist
    decode: str = "generate"              # or "static" (sole_r1_model/rewarders/fast_decode.py)
    compile_decode: str = "auto"
    image_processor_overrides: dict = dataclasses.field(default_factory=dict)  # over the checkpoint's settings

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_transformers_loading(self)
        if self.camera not in _CAMERAS:
            raise ValueError(f"camera must be one of {_CAMERAS}, got {self.camera!r}")
        if self.decode not in _DECODE:
            raise ValueError(f"decode must be one of {_DECODE}, got {self.decode!r}")
        if self.compile_decode not in _COMPILE_DECODE:
            raise ValueError(f"compile_decode must be one of {_COMPILE_DECODE}, got {self.compile_decode!r}")


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
    # official_baseline: the paper's GPT-5 baseline request (external previous + current frames as JPEG, one user
    # turn, no sampling fields); sole_r1: the SOLE-R1 system prompt + composite with the sampling fields above.
    prompt: str = "sole_r1"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if self.max_tokens_field not in ("max_tokens", "max_completion_tokens"):
            raise ValueError("max_tokens_field must be max_tokens or max_completion_tokens")
        _check_transport(self)
        if not isinstance(self.extra_body, dict):
            raise ValueError("extra_body must be a mapping merged into the request JSON")
        _check_variant(self.variant)
        _check_prompt(self.prompt)


@dataclasses.dataclass
class GeminiRewarderConfig:
    """`gemini` backend: Google's Gemini API through google-genai (defaults: the paper's Gemini-3-Pro baseline)."""

    model: str = DEFAULT_GEMINI_MODEL
    prompt: str = "official_baseline"     # or sole_r1: SOLE-R1 system prompt + composite (see PROMPTS)
    api_key_env: Optional[str] = None     # env var holding the key; null = GEMINI_API_KEY, then GOOGLE_API_KEY
    base_url: Optional[str] = None        # null = Google's endpoint; else a proxy or a local stub
    temperature: float = 0.0              # the baseline server's generation settings
    top_k: Optional[int] = 1              # null = not sent
    top_p: Optional[float] = None         # null = not sent (the baseline does not send it)
    max_output_tokens: int = 6000         # thinking tokens count against it
    thinking_level: Optional[str] = "low"  # minimal | low | medium | high; null = no thinking_config (older models)
    include_thoughts: bool = True         # thought summaries come back as separate parts; the answer is the last
    timeout_s: float = 120.0              # per HTTP attempt
    max_retries: int = 3                  # extra attempts after a 429/5xx, a timeout or a refused connection
    backoff_s: float = 1.0                # first retry delay; doubles each retry
    backoff_max_s: float = 60.0           # the baseline server waits 60 s on quota errors
    max_concurrency: int = 4              # queries of one batch sent in parallel (the baseline's max_workers)
    variant: str = "full"                 # composite layout, for prompt: sole_r1 only

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("model must be a Gemini model name, e.g. gemini-3-pro-preview")
        _check_prompt(self.prompt)
        if self.base_url is not None and not str(self.base_url).startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https:// (or be null), got {self.base_url!r}")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if self.top_k is not None and (int(self.top_k) != self.top_k or self.top_k < 1):
            raise ValueError(f"top_k must be an integer >= 1 or null, got {self.top_k!r}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] or null, got {self.top_p!r}")
        if int(self.max_output_tokens) != self.max_output_tokens or self.max_output_tokens < 1:
            raise ValueError(f"max_output_tokens must be an integer >= 1, got {self.max_output_tokens!r}")
        if self.thinking_level is not None and self.thinking_level not in _THINKING_LEVELS:
            raise ValueError(f"thinking_level must be one of {_THINKING_LEVELS} or null, got {self.thinking_level!r}")
        if not isinstance(self.include_thoughts, bool):
            raise ValueError(f"include_thoughts must be true or false, got {self.include_thoughts!r}")
        _check_transport(self)
        _check_variant(self.variant)


@dataclasses.dataclass
class RobometerRewarderConfig:
    """`robometer` backend: a running Robometer eval server (`robometer/evals/eval_server.py`), over HTTP."""

    url: str = "http://127.0.0.1:8000"    # the server's base URL; requests go to {url}/evaluate_batch_npy
    mode: str = "server"                  # the only mode: Robometer checkpoints do not load through transformers
    camera: str = "external"              # whose (first, previous, current) frames are sent: external | wrist
    use_frame_steps: bool = False         # true: the server scores each prefix (0:1, 0:2, 0:3), keeps its last frame
    max_batch_size: int = 8               # queries per HTTP request (one sample each)
    api_key_env: Optional[str] = None     # env var with a bearer token, for a server behind an authenticating proxy
    timeout_s: float = 120.0              # per HTTP attempt
    max_retries: int = 3                  # extra attempts after a 429/5xx, a timeout or a refused connection
    backoff_s: float = 0.5                # first retry delay; doubles each retry
    backoff_max_s: float = 8.0

    def __post_init__(self) -> None:
        if self.mode != "server":
            raise ValueError(
                f"robometer mode {self.mode!r} is not supported: Robometer checkpoints (robometer/Robometer-4B) are "
                "the RBM class of the robometer package -- a Qwen3-VL backbone with progress/success/preference "
                "heads, its own config.yaml and batch collator -- not an architecture transformers can load. Run "
                "its eval server on the GPU box (`uv run python robometer/evals/eval_server.py "
                "model_path=robometer/Robometer-4B server_url=0.0.0.0 server_port=8000`) and set `url` to it "
                "(mode: server)")
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
        if self.camera not in ("external", "wrist"):
            raise ValueError(f"camera must be external or wrist, got {self.camera!r}")
        if not isinstance(self.use_frame_steps, bool):
            raise ValueError(f"use_frame_steps must be true or false, got {self.use_frame_steps!r}")
        if int(self.max_batch_size) != self.max_batch_size or self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be an integer >= 1, got {self.max_batch_size!r}")
        _check_transport(self)


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
    "topreward": TOPRewardConfig,
    "roboreward": RoboRewardConfig,
    "gemini": GeminiRewarderConfig,
    "robometer": RobometerRewarderConfig,
}
RewarderConfig = Union[HFRewarderConfig, TOPRewardConfig, RoboRewardConfig, OpenAIRewarderConfig,
                       ZMQRewarderConfig, OracleRewarderConfig,
                       GeminiRewarderConfig, RobometerRewarderConfig]
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
    shipped = models_dir() / text / "rewarder.yaml"   # a model shipped in models/ (e.g. `embedded`)
    if "/" not in text and shipped.is_file():
        return load_config_file(shipped)
    raise ValueError(f"rewarder spec {text!r} is neither a backend ({', '.join(sorted(BACKEND_CONFIGS))}), "
                     f"'module:Class', an existing YAML file, a name under {named.parent}, nor a model folder "
                     f"under {shipped.parent.parent}")
