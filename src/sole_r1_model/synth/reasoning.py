"""Reasoning text grounded in simulator state: what changed since the previous frame, what is left, the verdict.

One to four short sentences, written from two StateSummary objects (previous key frame, current frame) and the
two progress labels. Each idea has several phrasings; a seeded numpy Generator picks one, so the same episode seed
gives the same text. All wording is written for this project.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from sole_r1_model.synth.state import StateSummary, TaskTerms

MOVE = 0.01          # metres: smaller changes of a distance are not worth a sentence
LIFT = 0.015         # metres of height change that count as lifting / lowering
GRIP = 0.25          # change of gripper opening (0..1) that counts as opening / closing
NEAR = 0.03          # metres: the hand counts as at the object (to grasp it, or touching it)
ENGAGED = 0.09       # metres: close enough to push or pull it (Meta-World pulls handles from their edge)
UNLATCHED = 45.0     # degrees of handle turn that unlatch RoboSuite's door (its progress stage)
FLAT = 3             # percentage points: smaller label changes read as "unchanged"
PICKING = ("pick", "lift", "tool")


@dataclasses.dataclass(frozen=True)
class Event:
    """One observed change, with the numbers its phrasings need."""

    kind: str
    values: dict = dataclasses.field(default_factory=dict)


def cm(metres: float) -> str:
    """A distance for a sentence: '7 cm', or 'less than 1 cm'."""
    value = abs(float(metres)) * 100.0
    return "less than 1 cm" if value < 1.0 else f"{value:.0f} cm"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _delta(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None else b - a


def observe_changes(terms: TaskTerms, prev: StateSummary, cur: StateSummary) -> list[Event]:
    """The changes between two frames, most telling first."""
    events: list[Event] = []
    if cur.success and not prev.success:
        events.append(Event({"reach": "reached", "door": "door_open"}.get(terms.kind, "success")))
    height = _delta(prev.object_height, cur.object_height) if terms.kind in PICKING else None
    grip = cur.gripper_opening - prev.gripper_opening
    if prev.grasped is False and cur.grasped:
        events.append(Event("grasp"))
    elif prev.grasped and cur.grasped is False:
        fell = height is not None and height < -LIFT
        events.append(Event("drop" if fell else "release", {"d": -height if fell else 0.0}))
    elif grip < -GRIP and not cur.grasped:
        events.append(Event("close_empty" if terms.kind in PICKING else "close"))
    elif grip > GRIP:
        events.append(Event("open"))
    if height is not None and cur.grasped and abs(height) >= LIFT:
        events.append(Event("raise" if height > 0 else "lower", {"d": height, "h": cur.object_height}))
    if terms.kind == "door" and cur.handle_angle is not None and abs(cur.handle_angle - prev.handle_angle) >= 5.0:
        events.append(Event("handle", {"a": abs(prev.handle_angle), "b": abs(cur.handle_angle)}))
    if terms.kind == "door" and cur.door_angle is not None and abs(cur.door_angle - prev.door_angle) >= 2.0:
        # Clamped: a door pressed into its frame reads a fraction of a degree below zero ("-0 degrees").
        events.append(Event("door", {"a": max(prev.door_angle, 0.0), "b": max(cur.door_angle, 0.0)}))
    goal = _delta(prev.object_to_goal, cur.object_to_goal)
    # A lift's remaining distance is its height, told by raise/lower; an object settling at reset is no news.
    if terms.kind not in ("reach", "door", "lift") and goal is not None and abs(goal) >= MOVE:
        events.append(Event("goal_closer" if goal < 0 else "goal_farther", {"d": goal, "left": cur.object_to_goal}))
    reach = _delta(prev.hand_to_object, cur.hand_to_object)
    if reach is not None and abs(reach) >= MOVE and not cur.grasped and not any(e.kind.startswith("goal")
                                                                                 for e in events):
        events.append(Event("approach" if reach < 0 else "retreat", {"d": reach, "left": cur.hand_to_object}))
    if (terms.kind in ("push", "articulate", "door") and cur.hand_to_object is not None
            and prev.hand_to_object is not None and cur.hand_to_object < NEAR <= prev.hand_to_object):
        events.append(Event("contact"))
    if not events:
        moved = float(np.linalg.norm(np.subtract(cur.hand, prev.hand)))
        events.append(Event("moved" if moved >= MOVE else "still", {"d": moved}))
    return events


_PHRASES = {
    "success": ["{Target} has reached {goal}.", "{Target} is now at {goal}.", "{target} has made it to {goal}."],
    "reached": ["The gripper has reached {goal}.", "The gripper is now at {goal}."],
    "door_open": ["The door now stands open far enough.", "The door has swung open past the required angle."],
    "grasp": ["The fingers have closed around {object}.", "The gripper now holds {object}.",
              "{Object} is now grasped between the fingers."],
    "release": ["The gripper has let go of {object}.", "{Object} is no longer held by the gripper."],
    "drop": ["{Object} slipped out of the gripper and fell {d}.", "The grasp was lost and {object} dropped {d}."],
    "close_empty": ["The gripper closed, but nothing is between its fingers.",
                    "The fingers shut on empty air, missing {object}."],
    "close": ["The gripper closed.", "The fingers have closed."],
    "open": ["The gripper opened.", "The fingers have opened."],
    "raise": ["{Object} rose {d} and is now {h} above where it rested.",
              "The arm lifted {object} by {d}; it is {h} up now.",
              "{Object} went up {d}, to {h} off its start height."],
    "lower": ["{Object} came down {d}.", "The arm lowered {object} by {d}."],
    "handle": ["The handle turned from {a:.0f} to {b:.0f} degrees.", "The handle is now at {b:.0f} degrees, "
               "from {a:.0f} before."],
    "door": ["The door swung from {a:.0f} to {b:.0f} degrees.",
             "The door angle changed from {a:.0f} to {b:.0f} degrees."],
    "goal_closer": ["{Target} moved {d} towards {goal}, leaving {left}.",
                    "{Target} is {d} closer to {goal}, now {left} away.",
                    "The gap between {target} and {goal} shrank by {d} to {left}."],
    "goal_farther": ["{Target} moved {d} away from {goal}; it is {left} away now.",
                     "The gap between {target} and {goal} grew by {d} to {left}."],
    "approach": ["The gripper moved {d} closer to {object}.", "The hand approached {object} by {d}.",
                 "The arm closed in on {object}, {d} nearer than before."],
    "retreat": ["The gripper drifted {d} away from {object}.", "The hand moved away from {object}, by {d}."],
    "contact": ["The gripper is now touching {object}.", "The hand has made contact with {object}."],
    "moved": ["The arm moved about {d}, but nothing relevant to the task changed.",
              "The hand shifted by {d} without changing the task state."],
    "still": ["Nothing has changed: the arm is holding still.", "The scene looks the same as before; no motion.",
              "The robot has not moved since the previous frame."],
}
_OPENERS = ["", "", "Since the previous frame, ", "Compared with the previous view, "]
_OPENERS_START = ["", "Since the start, ", "Compared with the first frame, "]


def phrase(event: Event, terms: TaskTerms, rng: np.random.Generator) -> str:
    """One sentence for an event, in a phrasing chosen by `rng`."""
    template = _PHRASES[event.kind][int(rng.integers(len(_PHRASES[event.kind])))]
    values = {k: cm(v) if k in ("d", "left", "h") else v for k, v in event.values.items()}
    names = {"object": terms.object, "goal": terms.goal, "target": terms.target,
             "Object": _cap(terms.object), "Target": _cap(terms.target)}
    return _cap(template.format(**names, **values))


def remaining(terms: TaskTerms, cur: StateSummary, rng: np.random.Generator) -> str:
    """What is still left to do, from the current state."""
    if cur.success:
        return str(rng.choice(["Nothing is left to do.", "The task is complete.", "The goal is achieved."]))
    o, g, t = terms.object, terms.goal, terms.target
    reach = ENGAGED if terms.kind in ("push", "articulate") else NEAR
    near = cur.hand_to_object is not None and cur.hand_to_object < reach
    far = "" if cur.hand_to_object is None else f" ({cm(cur.hand_to_object)} away)"
    left = "" if cur.object_to_goal is None else f" {cm(cur.object_to_goal)}"
    if terms.kind == "reach" and cur.object_to_goal is not None:
        options = [f"The gripper still has{left} to go to {g}.", f"{left.strip()} remain between the gripper and {g}."]
    elif terms.kind in PICKING and cur.hand_to_object is not None:
        carry = (f"raise it{left} more" if terms.kind == "lift" else
                 f"use it to move {t}{left} to {g}" if terms.kind == "tool" else f"bring it{left} to {g}")
        if cur.grasped:
            options = [f"It still has to {carry}.", f"What remains is to {carry}."]
        elif near:
            options = [f"Next the fingers must close on {o}, then {carry}.", f"It still has to grasp {o} and {carry}."]
        else:
            options = [f"Still to do: reach {o}{far}, grasp it and {carry}.",
                       f"The robot must still get to {o}{far}, pick it up and {carry}."]
    elif terms.kind == "door":
        if (cur.door_angle or 0.0) >= 2.0:
            options = [f"The door must swing about {max(17.0 - cur.door_angle, 1.0):.0f} degrees further."]
        elif (cur.handle_angle or 0.0) >= UNLATCHED:
            options = ["The latch is free; the door still has to be pulled open.",
                       "It still has to pull the unlatched door open."]
        elif near and (cur.handle_angle or 0.0) >= 5.0:
            options = [f"It still has to turn the handle {UNLATCHED - cur.handle_angle:.0f} degrees more, then pull "
                       "the door open."]
        elif near:
            options = ["It still has to turn the handle and pull the door open."]
        else:
            options = [f"It still has to reach the handle{far}, turn it and pull the door open."]
    elif terms.kind in ("push", "articulate") and cur.hand_to_object is not None:
        verb = "push" if terms.kind == "push" else "move"
        if near:
            options = [f"{_cap(o)} still has{left} to travel to {g}.", f"It has to {verb} {o}{left} further."]
        else:
            options = [f"It still has to reach {o}{far} and {verb} it{left} to {g}."]
    else:
        options = ["The task is not finished yet.", "The rest of the task still has to be done."]
    return _cap(str(rng.choice(options)))


def verdict(previous_label: int, label: int, rng: np.random.Generator) -> str:
    """The progress judgement: up, down or unchanged, ending on the new value."""
    p, c = int(previous_label), int(label)
    if c >= 100:
        options = ["The task is complete, so progress is 100%.", "That completes the task: 100%."]
    elif c - p >= FLAT:
        options = [f"Progress rises from {p}% to about {c}%.", f"So the estimate goes up from {p}% to {c}%.",
                   f"That is an advance on the previous {p}%: about {c}% now."]
    elif p - c >= FLAT:
        options = [f"Progress falls back from {p}% to {c}%.", f"This is a step backwards, from {p}% to about {c}%.",
                   f"The estimate drops from {p}% to {c}%."]
    else:
        options = [f"Progress stays near {c}%.", f"Progress is essentially unchanged at about {c}%.",
                   f"The estimate holds at roughly {c}%."]
    return str(rng.choice(options))


STYLES = ("full", "brief")


class _FirstWording:
    """Stands in for the numpy Generator where the brief style wants each idea's first wording, always."""

    def integers(self, n: int) -> int:
        return 0

    def choice(self, options):
        return options[0]


def brief(terms: TaskTerms, prev: StateSummary, cur: StateSummary, previous_label: int, label: int) -> str:
    """Two or three short sentences in one fixed wording: the main change, what is left, `Progress P% -> C%.`

    About half the tokens of the full style: a small model decodes it twice as fast on a CPU, and a fixed wording
    is learnt from far fewer examples.
    """
    first = _FirstWording()
    sentences = [phrase(observe_changes(terms, prev, cur)[0], terms, first)]
    if not cur.success:
        sentences.append(remaining(terms, cur, first))
    sentences.append(f"Progress {int(previous_label)}% -> {int(label)}%.")
    return " ".join(sentences)


def describe(terms: TaskTerms, prev: StateSummary, cur: StateSummary, previous_label: int, label: int,
             rng: np.random.Generator, from_start: bool = False, style: str = "full") -> str:
    """The reasoning for one example: `full` (1-4 sentences, varied wording) or `brief`; `from_start`: the
    previous frame is frame 0."""
    if style == "brief":
        return brief(terms, prev, cur, previous_label, label)
    if style != "full":
        raise ValueError(f"reasoning style must be one of {STYLES}, got {style!r}")
    events = observe_changes(terms, prev, cur)[:2]
    sentences = [phrase(e, terms, rng) for e in events]
    opener = str(rng.choice(_OPENERS_START if from_start else _OPENERS))
    if opener and not sentences[0].startswith("The robot has not moved"):
        sentences[0] = opener + sentences[0][:1].lower() + sentences[0][1:]
    tail = [remaining(terms, cur, rng), verdict(previous_label, label, rng)]
    if cur.success:
        tail = tail[1:]  # "nothing left" and "complete, 100 %" say the same
    elif rng.random() < 0.3:
        tail.reverse()
    return " ".join(sentences + tail)
