"""Rewarder backends behind one factory: `make_rewarder("sole_r1" | "openai" | "oracle" | dict | YAML path)`.

Backends are imported on demand, so asking for the oracle never imports torch or transformers.
"""
from __future__ import annotations

import os
from typing import Union

from sole_r1_model.rewarder import Rewarder
from sole_r1_model.rewarders.config import BACKEND_CONFIGS, resolve_spec

__all__ = ["BACKEND_CONFIGS", "make_rewarder"]


def make_rewarder(spec: Union[str, os.PathLike, dict]) -> Rewarder:
    """Build a rewarder from a backend name, a `{"backend": ..., **options}` dict or a YAML file path/name."""
    backend, config = resolve_spec(spec)
    if backend == "sole_r1":
        from sole_r1_model.rewarders.hf import HFRewarder

        return HFRewarder(config)
    if backend == "openai":
        from sole_r1_model.rewarders.openai_compat import OpenAICompatRewarder

        return OpenAICompatRewarder(config)
    from sole_r1_model.rewarders.oracle import OracleRewarder

    return OracleRewarder(config)
