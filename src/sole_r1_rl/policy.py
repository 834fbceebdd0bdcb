"""Shippable policies: the encoder + actor of a trained agent, without critics, optimisers or replay.

A training checkpoint holds the critic ensemble, its target and three Adam states (hundreds of MB at the SERL
preset); acting needs only the encoder and the actor. `export_policy` writes those two in bf16 to
`policy.safetensors`, the agent settings they were built with to `agent.yaml`, and what produced them to
`policy.json`; `load_policy` puts them into a freshly built agent, which then acts like the trained one and can
learn on (see `AgentConfig.policy_warmup_updates`: the new critic is fitted before it may move the actor).

    python -m sole_r1_rl.policy export runs/reach --out models/policy-reach-v3 --note "oracle reward, 8/10"
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Union

import torch

from sole_r1_rl.config import AgentConfig

WEIGHTS = "policy.safetensors"
AGENT = "agent.yaml"
INFO = "policy.json"
# Settings that fix the networks' shapes: a policy loads only into an agent built with the same values.
ARCHITECTURE = ("cameras", "image_size", "frame_stack", "proprio_dim", "proprio_latent_dim", "action_dim",
                "feature_dim", "hidden_dim", "hidden_depth", "mlp_activation", "mlp_layer_norm")


class PolicyError(ValueError):
    """A policy folder that cannot be used: missing files, foreign weights, or another architecture."""


def export_policy(checkpoint: Union[str, Path], out: Union[str, Path], info: Optional[dict] = None) -> Path:
    """Write the encoder + actor of `checkpoint` (a trainer checkpoint.pt or its run folder) to the folder `out`."""
    from safetensors.torch import save_file

    from sole_r1_rl.checkpoint import read_checkpoint

    path = Path(checkpoint)
    if path.is_dir():
        path = path / "checkpoint.pt"
    payload = read_checkpoint(str(path)).payload
    agent_state = payload["agent"]
    tensors = {}
    for part in ("encoder", "actor"):
        for key, value in agent_state[part].items():
            value = value.detach().cpu()
            tensors[f"{part}.{key}"] = (value.to(torch.bfloat16) if value.is_floating_point() else value).contiguous()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / WEIGHTS), metadata={"format": "pt"})
    config = AgentConfig.from_dict(agent_state["config"])
    config.device = "cpu"
    config.to_yaml(str(out / AGENT))
    counters = payload.get("counters", {})
    record = {"checkpoint": str(path), "env_steps": counters.get("env_steps"), "updates": counters.get("updates"),
              "episodes": counters.get("episodes"),
              "parameters": int(sum(t.numel() for t in tensors.values())), **(info or {})}
    (out / INFO).write_text(json.dumps(record, indent=1) + "\n")
    return out


def resolve_policy(name: Union[str, Path]) -> Path:
    """A policy folder given as a path, or as the name of a folder under models/ (e.g. `policy-reach-v3`)."""
    from sole_r1_config.paths import models_dir

    for candidate in (Path(name).expanduser(), models_dir() / str(name)):
        if (candidate / WEIGHTS).is_file():
            return candidate.resolve()
    shipped = sorted(p.parent.name for p in models_dir().glob(f"*/{WEIGHTS}")) if models_dir().is_dir() else []
    raise PolicyError(f"no policy {str(name)!r}: expected a folder holding {WEIGHTS} (a path, or a name under "
                      f"{models_dir()}); shipped: {shipped}")


def policy_config(name: Union[str, Path]) -> AgentConfig:
    """The agent settings a policy was trained with (its agent.yaml)."""
    folder = resolve_policy(name)
    if not (folder / AGENT).is_file():
        raise PolicyError(f"policy {folder} has no {AGENT}")
    return AgentConfig.from_yaml(str(folder / AGENT))


def architecture_overrides(name: Union[str, Path]) -> dict:
    """The shape-fixing settings of a policy, to build an agent it loads into."""
    config = policy_config(name).to_dict()
    return {key: config[key] for key in ARCHITECTURE}


def load_policy(agent, name: Union[str, Path]) -> dict:
    """Load a policy's encoder + actor into `agent` (built with matching shapes); returns its policy.json."""
    from safetensors.torch import load_file

    folder = resolve_policy(name)
    saved = policy_config(folder).to_dict()
    mine = agent.config.to_dict()
    different = {key: (saved[key], mine[key]) for key in ARCHITECTURE if saved[key] != mine[key]}
    if different:
        detail = ", ".join(f"{key}: policy {a!r} vs agent {b!r}" for key, (a, b) in different.items())
        raise PolicyError(f"policy {folder} was trained with other network shapes ({detail}); build the agent "
                          "with its agent.yaml settings (sole_r1_rl.policy.architecture_overrides)")
    tensors = load_file(str(folder / WEIGHTS))
    # bf16 on disk: load_state_dict copies into the agent's own (float32) parameters
    parts = {part: {key[len(part) + 1:]: value for key, value in tensors.items() if key.startswith(f"{part}.")}
             for part in ("encoder", "actor")}
    try:
        agent.load_parts(parts)
    except RuntimeError as error:
        raise PolicyError(f"policy {folder}: its weights do not fit: {error}") from error
    return policy_info(folder)


def policy_info(name: Union[str, Path]) -> dict:
    """What produced a policy (its policy.json: reward, env steps, notes), {} when it has none."""
    info_path = resolve_policy(name) / INFO
    return json.loads(info_path.read_text()) if info_path.is_file() else {}


def main(argv: Optional[list] = None) -> int:
    """`python -m sole_r1_rl.policy export RUN_OR_CHECKPOINT --out FOLDER [--note TEXT]`."""
    parser = argparse.ArgumentParser(prog="python -m sole_r1_rl.policy", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a run's encoder + actor (bf16) to a policy folder")
    export.add_argument("checkpoint", help="a trainer run folder or its checkpoint.pt")
    export.add_argument("--out", required=True, help="policy folder to write")
    export.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="provenance recorded in policy.json (task=..., reward=..., true_success=...)")
    args = parser.parse_args(argv)
    info = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
        info[key.strip()] = value
    out = export_policy(args.checkpoint, args.out, info)
    size = sum(os.path.getsize(p) for p in out.iterdir())
    print(f"policy: {out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
