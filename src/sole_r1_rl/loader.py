"""`BatchLoader`: replay batches ready on the learner's device, without stalling the GPU.

Three paths, chosen by device:
  * CPU: `replay.sample` on demand (the update dominates; nothing to overlap).
  * CUDA, frames on device (default when the ring fits in GPU memory): a `DeviceFrames` mirror of the replay's
    frame ring lives on the GPU, refreshed incrementally with the frames written since the last batch. A batch
    then moves only indices, proprio, actions and n-step targets (a few KB, from pinned memory, non_blocking);
    the frame stacks are gathered on the GPU. Sampling stays on the calling thread, so a resumed run draws
    exactly the batches an uninterrupted one would.
  * CUDA, frames on host (`frames_on_device=False`, or the ring does not fit): a background thread samples ahead
    into pinned host buffers (numpy's gathers release the GIL), the loop issues non_blocking copies and an event
    per buffer tells the thread when the GPU has finished reading it. Prefetching draws batches ahead, so the
    replay RNG saved in a checkpoint is a few batches "later" than the updates done.
Every host->device copy comes from pinned memory: a copy from pageable memory first waits for all queued GPU
work (CUDA's documented behaviour), which is what keeps a plain loop launch- and copy-bound.
"""
from __future__ import annotations

import logging
import queue
import threading
from typing import Optional

import numpy as np
import torch

from sole_r1_rl.replay import Batch, ReplayBuffer

LOG = logging.getLogger(__name__)
_TARGET_KEYS = ("proprio", "next_proprio", "action", "reward", "discount", "obs_index", "next_index")


class BatchLoader:
    """Iterator of device batches from a ReplayBuffer (see module docstring)."""

    def __init__(self, replay: ReplayBuffer, batch_size: int, device: str = "cpu",
                 frames_on_device: Optional[bool] = None, prefetch: int = 2) -> None:
        self.replay, self.batch_size = replay, batch_size
        self.device = torch.device(device)
        self._thread: Optional[threading.Thread] = None
        self.mirror: Optional[DeviceFrames] = None
        if self.device.type == "cuda":
            wanted = frames_on_device if frames_on_device is not None else DeviceFrames.fits(replay, self.device)
            if wanted:
                self.mirror = DeviceFrames(replay, self.device)
                self._staging = _PinnedRing(3)
            else:
                self._start_prefetch(prefetch)
        self.mode = "cpu" if self.device.type != "cuda" else ("frames_on_device" if self.mirror else "pinned_prefetch")

    def next(self) -> Batch:
        """The next batch: numpy-backed on CPU, device tensors (copies in flight) on CUDA."""
        if self.device.type != "cuda":
            return self.replay.sample(self.batch_size)
        if self.mirror is not None:
            return self._next_from_mirror()
        index = self._ready.get()
        if isinstance(index, BaseException):
            raise RuntimeError("replay sampling thread failed") from index
        host = self._buffers[index]
        moved = {key: tensor.to(self.device, non_blocking=True) for key, tensor in host.items()}
        self._events[index] = _recorded_event()
        self._free.put(index)
        return _batch_from_flat(moved)

    def close(self) -> None:
        """Stop the sampling thread, if any (safe to call twice)."""
        if self._thread is not None:
            self._stop.set()
            self._free.put(None)
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "BatchLoader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- frames on device
    def _next_from_mirror(self) -> Batch:
        # sample first, then upload: every slot the sample refers to was written before the refresh (another
        # thread may be adding transitions meanwhile)
        targets = self.replay.sample_indices(self.batch_size)
        self.mirror.refresh()
        moved = self._staging.upload({key: targets[key] for key in _TARGET_KEYS}, self.device)
        obs = {name: self.mirror.gather(name, moved["obs_index"]) for name in self.replay.cameras}
        next_obs = {name: self.mirror.gather(name, moved["next_index"]) for name in self.replay.cameras}
        return Batch(obs=obs, next_obs=next_obs, proprio=moved["proprio"], next_proprio=moved["next_proprio"],
                     action=moved["action"], reward=moved["reward"], discount=moved["discount"])

    # -- pinned prefetch thread
    def _start_prefetch(self, prefetch: int) -> None:
        template = self.replay.sample(self.batch_size).arrays()
        count = max(1, prefetch) + 1
        self._buffers = [{k: torch.empty(v.shape, dtype=_torch_dtype(v), pin_memory=True) for k, v in template.items()}
                         for _ in range(count)]
        self._events: list = [None] * count
        self._ready: queue.Queue = queue.Queue()
        self._free: queue.Queue = queue.Queue()
        for index in range(count):
            self._free.put(index)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="replay-prefetch", daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            while not self._stop.is_set():
                index = self._free.get()
                if index is None or self._stop.is_set():
                    return
                if self._events[index] is not None:
                    self._events[index].synchronize()   # the GPU has finished reading this buffer
                self.replay.sample(self.batch_size, out=_batch_from_flat(
                    {k: t.numpy() for k, t in self._buffers[index].items()}))
                self._ready.put(index)
        except BaseException as error:  # surfaced to the consumer instead of hanging it
            self._ready.put(error)


class DeviceFrames:
    """A GPU copy of the replay's frame ring, kept current by uploading only newly written frames."""

    CHUNK = 256   # frames per pinned staging upload

    def __init__(self, replay: ReplayBuffer, device: torch.device) -> None:
        self.replay, self.device = replay, device
        shape = next(iter(replay.frames.values())).shape
        self.frames = {name: torch.empty(shape, dtype=torch.uint8, device=device) for name in replay.cameras}
        self._staging = {name: torch.empty((self.CHUNK, *shape[1:]), dtype=torch.uint8, pin_memory=True)
                         for name in replay.cameras}
        self._event = None
        self._synced = 0
        self.refresh()

    @staticmethod
    def fits(replay: ReplayBuffer, device: torch.device, fraction: float = 0.5) -> bool:
        """Whether the whole ring takes at most `fraction` of the GPU's free memory."""
        needed = sum(array.nbytes for array in replay.frames.values())
        free, _ = torch.cuda.mem_get_info(device)
        if needed > fraction * free:
            LOG.warning("replay ring (%.1f GB) does not fit in GPU memory (%.1f GB free): sampling on the host "
                        "into pinned memory instead; lower replay_capacity to keep frames on the GPU",
                        needed / 1e9, free / 1e9)
            return False
        return True

    def refresh(self) -> None:
        """Upload the frames written since the last refresh (all of them when more than a ring's worth)."""
        with self.replay.lock:
            written = self.replay.frames_written
            start = max(min(self._synced, written), written - self.replay.capacity)
            count = written - start
            self._synced = written
            position = start
            while count > 0:
                slot = position % self.replay.capacity
                size = min(count, self.CHUNK, self.replay.capacity - slot)   # contiguous, fits the staging
                if self._event is not None:
                    self._event.synchronize()   # previous upload finished reading the staging buffer
                for name, staging in self._staging.items():
                    staging[:size].numpy()[...] = self.replay.frames[name][slot:slot + size]
                    self.frames[name][slot:slot + size].copy_(staging[:size], non_blocking=True)
                self._event = _recorded_event()
                position += size
                count -= size

    def gather(self, name: str, index: torch.Tensor) -> torch.Tensor:
        """(B, S) slot indices on the device -> (B, 3*S, H, W) uint8 frame stacks."""
        frames = self.frames[name].index_select(0, index.reshape(-1))
        return frames.view(index.shape[0], -1, *frames.shape[2:])


class _PinnedRing:
    """A few pinned staging slots for small host->device copies, reused once the GPU has read them."""

    def __init__(self, slots: int) -> None:
        self._buffers: list = [None] * slots
        self._events: list = [None] * slots
        self._next = 0

    def upload(self, arrays: dict, device: torch.device) -> dict:
        """Copy numpy arrays to `device` through pinned memory, non_blocking."""
        slot = self._next
        self._next = (slot + 1) % len(self._buffers)
        if self._events[slot] is not None:
            self._events[slot].synchronize()
        buffers = self._buffers[slot]
        if buffers is None or any(buffers[k].shape != tuple(v.shape) for k, v in arrays.items()):
            buffers = {k: torch.empty(v.shape, dtype=_torch_dtype(v), pin_memory=True) for k, v in arrays.items()}
            self._buffers[slot] = buffers
        moved = {}
        for key, array in arrays.items():
            buffers[key].numpy()[...] = array
            moved[key] = buffers[key].to(device, non_blocking=True)
        self._events[slot] = _recorded_event()
        return moved


def _recorded_event():
    event = torch.cuda.Event()
    event.record()
    return event


def _torch_dtype(array: np.ndarray) -> torch.dtype:
    return torch.from_numpy(np.asarray(array)[:0]).dtype


def _batch_from_flat(flat: dict) -> Batch:
    obs = {k.split("/", 1)[1]: v for k, v in flat.items() if k.startswith("obs/")}
    next_obs = {k.split("/", 1)[1]: v for k, v in flat.items() if k.startswith("next_obs/")}
    return Batch(obs=obs, next_obs=next_obs, proprio=flat["proprio"], action=flat["action"], reward=flat["reward"],
                 discount=flat["discount"], next_proprio=flat["next_proprio"])
