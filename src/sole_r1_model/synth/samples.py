"""Dataset rows of one episode, built exactly as a rewarder queries the model.

For each sampled frame t (the offline key frames `key_frame_indices(N, K)` after frame 0, plus optional extra
random frames) the row holds the composite of a ProgressQuery with the first, previous and current frames of the
shoulder (external) and wrist cameras (`prompt.build_messages`, i.e. `CompositeFrameBuilder`), the official
question with previous progress = the label of the previous sampled frame (0 at the first call, as the official
pipeline), and the target `<think>reasoning</think><answer>label%</answer>` (`examples.make_example`).
An extra frame t is asked against the key frame before it, as a rewarder sampling at another rate would.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from sole_r1_model.composite import CompositeFrameBuilder, variant_for_cameras
from sole_r1_model.examples import make_example
from sole_r1_model.frames import key_frame_indices
from sole_r1_model.prompt import build_messages
from sole_r1_model.rewarder import ProgressQuery
from sole_r1_model.synth.config import SynthConfig
from sole_r1_model.synth.reasoning import describe
from sole_r1_model.synth.rollouts import Episode, derive_seed
from sole_r1_model.synth.state import TaskTerms


def sample_pairs(num_frames: int, key_frames: int, extra: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """(previous, current) frame pairs to ask about: consecutive key frames, then extra frames vs their key frame."""
    keys = key_frame_indices(num_frames, key_frames)
    pairs = list(zip(keys[:-1], keys[1:]))
    others = np.array(sorted(set(range(1, num_frames)) - set(keys)), dtype=int)
    if extra and others.size:
        chosen = np.sort(rng.choice(others, size=min(extra, others.size), replace=False))
        for t in chosen.tolist():
            pairs.append((max(k for k in keys if k < t), t))
    return pairs


def encode_image(image: np.ndarray, config: SynthConfig) -> dict:
    """The composite as a datasets Image value: PNG (lossless, fast level) or JPEG bytes, deterministic."""
    buffer = io.BytesIO()
    picture = Image.fromarray(image)
    if config.image_format == "jpeg":
        picture.save(buffer, format="JPEG", quality=config.jpeg_quality)
    else:
        # compress_level 1: ~4x faster than the default 6 for ~20 % more bytes on these mostly-black grids.
        picture.save(buffer, format="PNG", compress_level=1)
    return {"bytes": buffer.getvalue(), "path": None}


def stated_previous(label: int, noise: float, rng: np.random.Generator, margin: int = 15) -> int:
    """The previous progress the prompt states: the true label, or with probability `noise` a wrong estimate at least
    `margin` points off (uniform over 0..100), as a rewarder's own earlier mistake would read."""
    if noise <= 0 or rng.random() >= noise:
        return int(label)
    choices = [value for value in range(101) if abs(value - int(label)) >= margin]
    return int(rng.choice(choices))


def episode_rows(episode: Episode, labels: list[int], terms: TaskTerms, config: SynthConfig) -> list[dict]:
    """The dataset rows of one episode (images already encoded)."""
    plan = episode.plan
    rng = np.random.default_rng([plan.seed, 2])
    variant = variant_for_cameras(config.variant, have_wrist=True)
    builder = CompositeFrameBuilder(variant=variant)
    rows = []
    for previous, current in sample_pairs(episode.num_frames, config.key_frames, config.extra_frames, rng):
        previous_label = 0 if previous == 0 else stated_previous(labels[previous], config.previous_noise,
                                                                np.random.default_rng([derive_seed(plan.seed,
                                                                                                   "previous"), current]))
        query = ProgressQuery(
            task=episode.instruction,
            external=(episode.shoulder[0], episode.shoulder[previous], episode.shoulder[current]),
            wrist=(episode.wrist[0], episode.wrist[previous], episode.wrist[current]),
            previous_progress=previous_label, query_index=current,
        )
        image, _ = build_messages(query, variant, builder)
        text_rng = np.random.default_rng([derive_seed(plan.seed, "text"), current])
        reasoning = describe(terms, episode.states[previous], episode.states[current], previous_label,
                             labels[current], text_rng, from_start=previous == 0,
                             style=config.reasoning)
        row = make_example(image, task=episode.instruction, progress=labels[current],
                           previous_progress=previous_label, reasoning=reasoning, suite=plan.ref.suite,
                           task_name=plan.ref.task, episode=f"{plan.ref.suite}/{plan.ref.task}/{plan.name}",
                           frame_index=current, num_frames=episode.num_frames, success=episode.success,
                           policy=plan.policy, variant=variant)
        row["images"] = [encode_image(image, config)]
        rows.append(row)
    return rows
