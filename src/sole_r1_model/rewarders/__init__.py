"""Rewarder backends behind one factory: `make_rewarder("sole_r1" | "topreward" | "roboreward" | "openai" | "zmq" |
"gemini" | "robometer" | "oracle" | "module:Class" | dict | YAML path)`.

Backends are imported on demand, so asking for the oracle never imports torch or transformers.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Union

from sole_r1_model.rewarder import Rewarder
from sole_r1_model.rewarders.config import BACKEND_CONFIGS, CLASS_SPEC, resolve_spec, rewarder_class

__all__ = ["BACKEND_CONFIGS", "make_rewarder"]


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
    if backend == "sole_r1":
        from sole_r1_model.rewarders.hf import HFRewarder

        return HFRewarder(config)
    if backend == "topreward":
        from sole_r1_model.rewarders.topreward import TOPRewardRewarder

        return TOPRewardRewarder(config)
    if backend == "roboreward":
        from sole_r1_model.rewarders.roboreward import RoboRewardRewarder

        return RoboRewardRewarder(config)
    if backend == "openai":
        from sole_r1_model.rewarders.openai_compat import OpenAICompatRewarder

        return OpenAICompatRewarder(config)
    if backend == "zmq":
        from sole_r1_model.rewarders.zmq_client import ZMQRewarder

        return ZMQRewarder(config)
    if backend == "gemini":
        from sole_r1_model.rewarders.gemini import GeminiRewarder

        return GeminiRewarder(config)
    if backend == "robometer":
        from sole_r1_model.rewarders.robometer import RobometerRewarder

        return RobometerRewarder(config)
    from sole_r1_model.rewarders.oracle import OracleRewarder

    return OracleRewarder(config)
