"""The official DrQ-v2 agent from a user's checkout of facebookresearch/drqv2, timed beside ours.

The project ships none of its code: `load_checkout(PATH)` imports `drqv2.py` and `utils.py` from the checkout
(`git clone https://github.com/facebookresearch/drqv2`), builds `DrQV2Agent` with its `medium` config and feeds
`update(replay_iter, step)` the way its training loop does: `next(replay_iter)` returns the
(obs, action, reward, discount, next_obs) host batch its replay DataLoader collates (CPU tensors, pinned on CUDA:
`pin_memory=True`), which `utils.to_torch` copies to the device inside the update.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import itertools
import sys
import types
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

# drqv2@c0c650b cfgs/config.yaml:31-47 (agent section) with cfgs/task/medium.yaml's stddev_schedule
MEDIUM = dict(lr=1e-4, feature_dim=50, hidden_dim=1024, critic_target_tau=0.01, num_expl_steps=2000,
              update_every_steps=2, stddev_schedule="linear(1.0,0.1,500000)", stddev_clip=0.3, use_tb=False)
OBS_SHAPE = (9, 84, 84)   # one camera, 3 stacked RGB frames (cfgs/config.yaml:7 frame_stack, dmc.py:206 84 px)
VARIANTS = ("official", "official_on_dev")
# imported by drqv2.py / utils.py but used by neither the agent nor the utils it calls (train.py uses them);
# module name -> the pip package that provides it
UNUSED_IMPORTS = {"hydra": "hydra-core", "omegaconf": "omegaconf"}
_MODULES = ("drqv2", "utils")


@dataclasses.dataclass
class Checkout:
    """The checkout's two modules, and which of its unused imports stood in as placeholders."""

    path: Path
    drqv2: types.ModuleType
    utils: types.ModuleType
    placeholders: tuple


def load_checkout(path) -> Checkout:
    """Import drqv2.py + utils.py from `path`; SystemExit with what to do when that is not a usable checkout."""
    root = Path(path).expanduser().resolve()
    missing = [name for name in ("drqv2.py", "utils.py") if not (root / name).is_file()]
    if missing:
        raise SystemExit(f"--peer {path}: no {' or '.join(missing)} there; pass the root folder of a checkout of "
                         f"facebookresearch/drqv2 (git clone https://github.com/facebookresearch/drqv2)")
    placeholders = tuple(name for name in UNUSED_IMPORTS if importlib.util.find_spec(name) is None)
    # 'drqv2' and 'utils' are generic top-level names: hide any already imported, restore them afterwards
    saved = {name: sys.modules.pop(name) for name in (*_MODULES, *placeholders) if name in sys.modules}
    sys.modules.update({name: _placeholder(name) for name in placeholders})
    sys.path.insert(0, str(root))
    try:
        drqv2 = importlib.import_module("drqv2")
        utils = sys.modules["utils"]
    except ImportError as error:
        name = (error.name or "").split(".")[0]
        hint = f"; install it: pip install {UNUSED_IMPORTS.get(name, name)}" if name else ""
        raise SystemExit(f"--peer {path}: importing drqv2.py failed: {error}{hint}") from error
    finally:
        sys.path.remove(str(root))
        for name in (*_MODULES, *placeholders):
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    if not hasattr(drqv2, "DrQV2Agent") or not hasattr(utils, "to_torch"):
        raise SystemExit(f"--peer {path}: drqv2.py has no DrQV2Agent or utils.py no to_torch; "
                         "is it a checkout of facebookresearch/drqv2?")
    return Checkout(root, drqv2, utils, placeholders)


def official_agent(checkout: Checkout, device: torch.device, action_dim: int = 7):
    """`DrQV2Agent` with the official medium config on one 9x84x84 camera."""
    return checkout.drqv2.DrQV2Agent(obs_shape=OBS_SHAPE, action_shape=(action_dim,), device=str(device), **MEDIUM)


def official_batch(arrays: dict, camera: str, device: torch.device) -> list:
    """(obs, action, reward, discount, next_obs) of one camera from our sampled batch, as its DataLoader yields
    them: CPU tensors, pinned when the agent runs on CUDA."""
    names = (f"obs/{camera}", "action", "reward", "discount", f"next_obs/{camera}")
    batch = [torch.from_numpy(np.ascontiguousarray(arrays[name])) for name in names]
    return [t.pin_memory() for t in batch] if device.type == "cuda" else batch


def official_runners(checkout: Checkout, host_batch: list, device: torch.device,
                     variants=VARIANTS) -> tuple[dict, list]:
    """variant -> update(i) for each requested variant, and notes for the report.

    official         the official update fed from host batches (its to_torch copies them to the device)
    official_on_dev  the same update fed batches already on the device (to_torch then has nothing to copy)
    Update i runs at step i * update_every_steps: its `update` skips the steps in between."""
    runners, notes = {}, []
    for variant in variants:
        if variant not in VARIANTS:
            raise SystemExit(f"unknown official variant {variant!r}; choose from {VARIANTS}")
        torch.manual_seed(0)
        agent = official_agent(checkout, device, action_dim=host_batch[1].shape[1])
        batch = host_batch
        if variant == "official_on_dev":
            batch = [t.to(device) for t in host_batch]
            moved = checkout.utils.to_torch(batch, device)
            if any(a.data_ptr() != b.data_ptr() for a, b in zip(moved, batch)):
                notes.append("official_on_dev: this checkout's utils.to_torch copies tensors already on the device, "
                             "so the variant includes one device-to-device copy per update")
        runners[variant] = _runner(agent, itertools.repeat(batch))
    if checkout.placeholders:
        notes.append(f"{', '.join(checkout.placeholders)} not installed: drqv2.py/utils.py import them but the "
                     "timed code never uses them, so placeholders stood in (pip install "
                     f"{' '.join(UNUSED_IMPORTS[n] for n in checkout.placeholders)} to import the real ones)")
    return runners, notes


@contextlib.contextmanager
def official_backend_flags(device: torch.device):
    """Torch flags as the official train.py runs (cudnn.benchmark on, torch's default TF32 settings), restored
    after: our agent turns TF32 matmuls on process-wide, which the official agent would not get on its own."""
    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cudnn.benchmark = True             # drqv2@train.py:25
    torch.backends.cuda.matmul.allow_tf32 = False     # torch defaults
    torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.allow_tf32) = saved


def _runner(agent, replay_iter: Iterator) -> Callable[[int], None]:
    every = agent.update_every_steps
    return lambda i: agent.update(replay_iter, i * every)


def _placeholder(name: str) -> types.ModuleType:
    """A module that imports fine and says what to install when anything in it is used."""
    message = f"{name} is not installed (pip install {UNUSED_IMPORTS[name]}); the drqv2 checkout used it"

    class Missing:
        def __getattr__(self, attribute):
            raise RuntimeError(message)

        def __call__(self, *args, **kwargs):
            raise RuntimeError(message)

    def attribute(name_: str):
        if name_.startswith("__"):   # module protocol lookups (__path__, __file__) find nothing, as usual
            raise AttributeError(name_)
        return Missing()              # `from omegaconf import OmegaConf` gets a Missing

    module = types.ModuleType(name, f"placeholder for the missing {name} package")
    module.__getattr__ = attribute
    return module
