"""Rewarder backends behind one factory: `make_rewarder("sole_r1" | "topreward" | "roboreward" | "openai" | "zmq" |
"gemini" | "robometer" | "oracle" | "module:Class" | dict | YAML path)`.

Backends are imported on demand, so asking for the oracle never imports torch or transformers.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Union

from sole_r1_model.rewarder import Rewarder
from sole_r1_model.rewarders.config import BACKEND_CONFIGS, CLASS_SPEC, resolve_spec, rewarder_class

__all__ = ["BACKEND_CONFIGS", "make_rewarder"]


# Where each named backend's class lives: imported on demand, so asking for the oracle never imports torch.
_BACKEND_CLASSES = {
    "sole_r1": "sole_r1_model.rewarders.hf:HFRewarder",
    "topreward": "sole_r1_model.rewarders.topreward:TOPRewardRewarder",
    "roboreward": "sole_r1_model.rewarders.roboreward:RoboRewardRewarder",
    "openai": "sole_r1_model.rewarders.openai_compat:OpenAICompatRewarder",
    "zmq": "sole_r1_model.rewarders.zmq_client:ZMQRewarder",
    "gemini": "sole_r1_model.rewarders.gemini:GeminiRewarder",
    "robometer": "sole_r1_model.rewarders.robometer:RobometerRewarder",
    "oracle": "sole_r1_model.rewarders.oracle:OracleRewarder",
}


def make_rewarder(spec: Union[str, os.PathLike, dict]) -> Rewarder:
    """Build a rewarder from a backend name, `module:Class`, a `{"backend": ..., **options}` dict or a YAML file."""
    backend, config = resolve_spec(spec)
    if CLASS_SPEC.match(backend):
        options = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)}
        try:
            return rewarder_class(backend)(**options)
        except TypeError as exc:
            raise ValueError(f"rewarder spec {backend!r}: cannot build it with options {sorted(options)} "
                             f"({exc})") from exc
    module_name, _, class_name = _BACKEND_CLASSES[backend].partition(":")
    return getattr(importlib.import_module(module_name), class_name)(config)
