"""Evaluation outputs: report.json (one section per rewarder), report.md (side-by-side tables), a PNG curve grid.

NaN (an undefined metric) is written as JSON null, always with a count or a reason next to it in the section, so
a reader can tell "no value" from "zero".
"""
from __future__ import annotations

import dataclasses
import json
import math
import textwrap
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sole_r1_model.evaluation.episodes import Episode
from sole_r1_model.evaluation.evaluate import summarize

SCHEMA = "sole_r1.eval/1"
MAX_PANELS = 48  # a grid larger than this is unreadable; the report says how many episodes were left out


@dataclasses.dataclass
class Section:
    """One rewarder's (or one predictions folder's) evaluations on the episode set."""

    label: str                      # the name shown in tables and legends
    kind: str                       # "rewarder" (scored here) or "predictions" (precomputed outputs)
    source: str                     # the rewarder spec or the predictions folder
    evaluations: list               # one EpisodeEvaluation per episode, in episode order
    privileged: bool = False        # True when the rewarder read ground truth (the oracle): not a real score
    notes: dict = dataclasses.field(default_factory=dict)  # e.g. episodes without predictions


def build_report(sections: Sequence[Section], episodes: Sequence[Episode], episode_set: str,
                 threshold: float, settings: Optional[dict] = None) -> dict:
    """The report as a dict; with one section its summary is also repeated at the top level."""
    labels = [e.success for e in episodes]
    report = {"schema": SCHEMA, "episode_set": episode_set, "num_episodes": len(episodes),
              "num_successful": labels.count(True), "num_unsuccessful": labels.count(False),
              "num_unlabelled": labels.count(None), "threshold": float(threshold), **(settings or {})}
    report["sections"] = [_section(s, threshold) for s in sections]
    if len(sections) == 1:  # one rewarder: its numbers where a reader looks first
        report.update({k: v for k, v in report["sections"][0].items() if k not in report})
    return report


def _section(section: Section, threshold: float) -> dict:
    """One report section: identity, summary metrics, per-episode table."""
    return {"rewarder": section.label, "kind": section.kind, "source": section.source,
            "privileged": section.privileged, **section.notes, **summarize(section.evaluations, threshold),
            "episodes": [e.row() for e in section.evaluations]}


def to_json(value):
    """`value` with NaN/inf turned into None and numpy scalars into Python numbers (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(report: dict, path: Path) -> Path:
    """Write report.json (strict JSON: null for undefined metrics)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(report), indent=2, allow_nan=False) + "\n")
    return path


def _fmt(value, digits: int = 2, percent: bool = False) -> str:
    """A table cell: n/a for undefined values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{100 * value:.0f} %" if percent else f"{value:.{digits}f}"


def write_markdown(report: dict, path: Path, curves: Optional[Path] = None) -> Path:
    """Write report.md: a rewarder comparison table, notes on undefined values, and a per-episode table."""
    sections = report["sections"]
    lines = ["# Reward model evaluation", "",
             f"Episode set `{report['episode_set']}`: {report['num_episodes']} episodes "
             f"({report['num_successful']} successful, {report['num_unsuccessful']} unsuccessful, "
             f"{report['num_unlabelled']} unlabelled). Perceived success = final progress >= "
             f"{report['threshold']:g} %.", "",
             "| rewarder | scored | Pearson ↑ | MAE ↓ | VOC (successful) ↑ | AUROC final ↑ | perceived success "
             "(all / successful / unsuccessful) | invalid | s / query |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in sections:
        name = f"{s['rewarder']} (privileged: saw ground truth)" if s["privileged"] else s["rewarder"]
        perceived = " / ".join(_fmt(s[k], percent=True) for k in (
            "perceived_success_rate", "perceived_success_rate_successful", "perceived_success_rate_unsuccessful"))
        cells = [name, f"{s['num_scored']}/{s['num_episodes']}", _fmt(s["pearson_mean"]), _fmt(s["mae_mean"], 1),
                 _fmt(s["voc_successful_mean"]), _fmt(s["auroc_final"]), perceived,
                 _fmt(s["invalid_rate"], percent=True), _fmt(s["seconds_per_query"], 3)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *_notes(sections), "## Per episode", "", *_episode_table(sections)]
    if curves is not None:
        lines += ["", f"![predicted vs ground-truth progress]({curves.name})"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _notes(sections: Sequence[dict]) -> list:
    """Bullet notes explaining every n/a and every excluded episode."""
    notes = []
    for s in sections:
        name = s["rewarder"]
        if s["pearson_undefined"]:
            notes.append(f"- {name}: Pearson undefined (constant series) on {s['pearson_undefined']} episode(s), "
                         f"left out of the mean: {', '.join(s['pearson_undefined_stems'])}")
        for key, metric in (("auroc_reason", "AUROC"), ("voc_successful_reason", "VOC"),
                            ("seconds_per_query_reason", "seconds per query")):
            if key in s:
                notes.append(f"- {name}: {metric} n/a: {s[key]}")
        if s["num_failed"]:
            failed = [e["stem"] for e in s["episodes"] if e["error"]]
            notes.append(f"- {name}: {s['num_failed']} episode(s) could not be scored: {', '.join(failed)}")
        if s.get("missing"):
            notes.append(f"- {name}: no prediction for {len(s['missing'])} episode(s): {', '.join(s['missing'])}")
    return notes + [""] if notes else []


def _episode_table(sections: Sequence[dict]) -> list:
    """Rows = episodes, columns = Pearson / MAE / final progress of each rewarder."""
    header = "| episode | success | frames | " + " | ".join(
        f"{s['rewarder']} Pearson | MAE | final %" for s in sections) + " |"
    lines = [header, "|---|---|---|" + "---|---|---|" * len(sections)]
    rows = {}
    for s in sections:
        for e in s["episodes"]:
            rows.setdefault(e["stem"], e)
    for stem, first in rows.items():
        cells = [stem, _fmt(first["success"]) if first["success"] is not None else "?", str(first["num_frames"])]
        for s in sections:
            e = next((x for x in s["episodes"] if x["stem"] == stem), None)
            if e is None or e["error"]:
                cells += ["—", "—", "—"]
            else:
                cells += [_fmt(e["pearson"]), _fmt(e["mae"], 1), _fmt(e["final_progress"], 0)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def write_curves(sections: Sequence[Section], episodes: Sequence[Episode], path: Path) -> Path:
    """PNG grid, one panel per episode: ground truth and every rewarder's interpolated curve with its key answers."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = list(episodes)[:MAX_PANELS]
    cols = min(4, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig = Figure(figsize=(3.6 * cols, 2.8 * rows + 0.6), dpi=100)
    FigureCanvasAgg(fig)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    for i, episode in enumerate(shown):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.plot(np.arange(episode.num_frames), episode.ground_truth, color="black", linewidth=2, label="ground truth")
        for j, section in enumerate(sections):
            e = next((x for x in section.evaluations if x.stem == episode.stem and not x.error), None)
            if e is None:
                continue
            color = colors[j % len(colors)]
            ax.plot(np.arange(e.num_frames), e.predicted, color=color, linewidth=1.5, label=section.label)
            ax.plot(e.key_frame_indices, e.key_progress, "o", color=color, markersize=3)
        outcome = {True: "success", False: "failure", None: "?"}[episode.success]
        ax.set_title(textwrap.fill(f"{episode.stem} ({outcome})", 44), fontsize=7)
        ax.set(ylim=(min(-2.0, ax.get_ylim()[0]), 105), xlim=(0, max(1, episode.num_frames - 1)))
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=6, loc="upper left")
    title = "Predicted vs ground-truth progress (%) per episode"
    if len(episodes) > len(shown):
        title += f" -- first {len(shown)} of {len(episodes)} episodes"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
