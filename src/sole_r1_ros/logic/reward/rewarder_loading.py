"""Build the reward node's rewarder from its two parameters: a spec for `make_rewarder` and YAML overrides."""
from __future__ import annotations

import dataclasses

import yaml

from sole_r1_model.rewarder import Rewarder


def parse_options(text: str) -> dict:
    """The `rewarder_options` parameter: a YAML mapping of config overrides ("" = none); ValueError otherwise."""
    if not text.strip():
        return {}
    try:
        options = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"rewarder_options is not valid YAML ({exc}); write a mapping such as "
                         "'{max_new_tokens: 64, temperature: 0.0}'") from exc
    if not isinstance(options, dict):
        raise ValueError(f"rewarder_options must be a YAML mapping of config keys, got {type(options).__name__}")
    if "backend" in options:
        raise ValueError("rewarder_options cannot change 'backend': choose the backend with the 'rewarder' parameter")
    return options


def load_rewarder(spec: str, options_text: str = "") -> Rewarder:
    """`make_rewarder(spec)`, with the options merged over the spec's resolved config (unknown keys are errors)."""
    from sole_r1_model.rewarders import make_rewarder
    from sole_r1_model.rewarders.config import resolve_spec

    options = parse_options(options_text)
    if not options:
        return make_rewarder(spec)
    backend, config = resolve_spec(spec)  # the backend name, a config/rewarders name or a YAML path
    merged = {"backend": backend, **dataclasses.asdict(config), **options}
    return make_rewarder(merged)
