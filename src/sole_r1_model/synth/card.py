"""The dataset card (README.md) of a synthesised dataset: what is in it and how to make it again."""
from __future__ import annotations

import collections

from sole_r1_model.examples import COLUMNS
from sole_r1_model.synth.config import SynthConfig

LABEL_TEXT = {
    "privileged": "the simulator's privileged staged progress (`env.privileged_progress()`, formulas in "
                  "`sole_r1_sim/progress.py` and `docs/training.md`): weighted stages (reach, grasp, lift, carry, "
                  "...), capped at 95 until the suite reports success, then 100. Failed episodes stall and regress "
                  "(a dropped object loses its grasp and lift stages).",
    "time": "successful episodes: `100 * t / t_success` (monotone in time, 100 from the first successful frame, the "
            "paper's convention for demonstrations); failed episodes: the privileged staged progress.",
}


def dataset_card(config: SynthConfig, records: list[dict], heldout: list[dict]) -> str:
    """README.md text; deterministic (no dates, no paths), so the same run gives the same bytes."""
    per_task = collections.OrderedDict()
    for r in records:
        row = per_task.setdefault(f"{r['suite']}/{r['task']}", [0, 0, 0])
        row[0] += 1
        row[1] += int(r["success"])
        row[2] += r["num_examples"]
    policies = collections.Counter(r["policy"] for r in records)
    examples = sum(r["num_examples"] for r in records)
    lines = [
        "---",
        "pretty_name: SOLE-R1 synthetic progress data",
        "task_categories:\n- image-text-to-text",
        "tags:\n- robotics\n- reward-model\n- sole-r1\n- synthetic",
        "---",
        "# SOLE-R1 synthetic progress data",
        "",
        "Reward-model training examples in the exact SOLE-R1 query format, made by `sole-r1 synth` from scripted-",
        "expert, noisy, stalled, derailed, random and idle rollouts in simulation. Each row is one model call: the",
        "composite image (first | previous | current; external camera on top, wrist below, 384-pixel tiles, "
        "smart-resized),",
        "the official system and user messages with the previous progress, and the target",
        "`<think>reasoning</think><answer>N%</answer>`.",
        "",
        f"- episodes: {len(records)} ({sum(int(r['success']) for r in records)} successful), examples: {examples}",
        f"- key frames per episode: {config.key_frames}, extra random frames per episode: {config.extra_frames}",
        f"- camera render size: {config.image_size} px, composite layout: `{config.variant}`, "
        f"image encoding: {config.image_format}",
        f"- seed: {config.seed}",
        "- policies: " + ", ".join(f"{p} {n}" for p, n in sorted(policies.items())),
        "",
        "Recreate with:",
        "",
        "```",
        config.command_line(),
        "```",
        "",
        "## Labels",
        "",
        f"`--label {config.label}`: {LABEL_TEXT[config.label]}",
        "The previous progress in each prompt is the label of the previous sampled frame (0 at the first call).",
        "",
        "## Reasoning",
        "",
        "1-4 sentences written from simulator state by seeded templates: what changed since the previous frame",
        "(gripper opened/closed, grasp gained or lost, lift height, distances of hand and object to their targets,",
        "door angle), what remains to be done, and the progress verdict.",
        "",
        "## Columns",
        "",
        ", ".join(f"`{c}`" for c in COLUMNS),
        "(see `sole_r1_model/examples.py`; TRL conversational prompt-completion format).",
        "",
        "## Tasks",
        "",
        "| task | episodes | successful | examples |",
        "|---|---|---|---|",
        *(f"| {name} | {n} | {ok} | {ex} |" for name, (n, ok, ex) in per_task.items()),
    ]
    if heldout:
        held = sorted({f"{r['suite']}/{r['task']}" for r in heldout})
        lines += ["", "## Held-out tasks", "",
                  f"Not in the dataset; {len(heldout)} episodes under `heldout/test_videos/` for zero-shot evaluation:",
                  "", *(f"- {name}" for name in held)]
    return "\n".join(lines) + "\n"
