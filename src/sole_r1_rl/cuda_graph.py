"""CUDA-graph replay of the agent's whole update (forward, backward, Adam steps, target update).

On a GPU the DrQ-v2 update is dispatch-bound: measured on an H100 (batch 256, 9x84x84), its kernels need ~5 ms
but launching them from Python takes ~15 ms. A CUDA graph records the kernels once and replays them with one
launch. One graph per update kind (critic only / critic + actor, for critic_actor_ratio > 1) over static input
tensors; each update copies the batch into them and replays.

Capture needs a few warm-up steps (cuDNN algorithm choice, lazily created gradients and Adam state); they run on a
snapshot that is restored in place afterwards, so capturing changes no weights. Gradients are zeroed in place inside
the graph (not set to None) so both graphs share the same gradient tensors. After `load_state_dict` the graphs are
dropped and recaptured (optimiser state tensors are replaced by a load).
"""
from __future__ import annotations

import logging

import torch

LOG = logging.getLogger(__name__)
WARMUP_STEPS = 3


class GraphedUpdate:
    """Runs `agent._step(batch, with_actor, set_to_none=False)` through captured CUDA graphs."""

    def __init__(self, agent) -> None:
        self.agent = agent
        self.graphs: dict = {}
        self.static = None
        self.pool = None

    def run(self, batch, with_actor: bool) -> dict:
        """Copy `batch` into the static inputs, replay (capturing first if needed); returns metric tensors."""
        if self.static is None:
            self.static = _map(batch, lambda t: t.clone())
        else:
            _copy_into(self.static, batch)
        if with_actor not in self.graphs:
            self._capture(with_actor)
        graph, names, out = self.graphs[with_actor]
        graph.replay()
        return dict(zip(names, out.clone().unbind()))

    def invalidate(self) -> None:
        """Forget captured graphs (after optimiser state tensors were replaced)."""
        self.graphs = {}

    def _capture(self, with_actor: bool) -> None:
        snapshot = self._snapshot()
        try:
            current = torch.cuda.current_stream()
            side = torch.cuda.Stream()
            side.wait_stream(current)
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    self.agent._step(self.static, with_actor, set_to_none=False)
            current.wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            # thread_local: an acting thread may keep launching kernels (e.g. the learner node's actor) meanwhile
            with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
                metrics = self.agent._step(self.static, with_actor, set_to_none=False)
                names = list(metrics)
                out = torch.stack([metrics[name].float() for name in names])
        finally:
            self._restore(snapshot)   # the warm-up steps never count, whether or not the capture worked
        self.pool = graph.pool()
        self.graphs[with_actor] = (graph, names, out)
        LOG.info("captured CUDA graph for %s updates", "critic+actor" if with_actor else "critic-only")

    def _tensors(self) -> dict:
        """Every tensor an update writes: parameters, buffers and optimiser state."""
        agent, tensors = self.agent, {}
        for name in ("encoder", "actor", "critic", "critic_target"):
            for key, value in getattr(agent, name).state_dict(keep_vars=True).items():
                tensors[f"{name}.{key}"] = value
        for name in ("encoder_opt", "actor_opt", "critic_opt"):
            optimizer = getattr(agent, name)
            for index, param in enumerate(p for group in optimizer.param_groups for p in group["params"]):
                for key, value in optimizer.state.get(param, {}).items():
                    if torch.is_tensor(value):
                        tensors[f"{name}.{index}.{key}"] = value
        return tensors

    def _snapshot(self) -> dict:
        return {key: value.detach().clone() for key, value in self._tensors().items()}

    def _restore(self, snapshot: dict) -> None:
        with torch.no_grad():
            for key, value in self._tensors().items():
                if key in snapshot:
                    value.copy_(snapshot[key])
                else:   # optimiser state created by the warm-up: back to a fresh optimiser's zeros
                    value.zero_()


def _map(batch, fn):
    from sole_r1_rl.replay import Batch
    return Batch(obs={k: fn(v) for k, v in batch.obs.items()}, next_obs={k: fn(v) for k, v in batch.next_obs.items()},
                 proprio=fn(batch.proprio), action=fn(batch.action), reward=fn(batch.reward),
                 discount=fn(batch.discount), next_proprio=fn(batch.next_proprio))


def _copy_into(static, batch) -> None:
    for key, value in batch.arrays().items():
        target = static.arrays()[key]
        if target.shape != value.shape:
            raise ValueError(f"CUDA-graph updates need a fixed batch shape: {key} is {tuple(value.shape)}, "
                             f"the graph was captured with {tuple(target.shape)}")
        target.copy_(value, non_blocking=True)
