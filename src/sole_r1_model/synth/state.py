"""Per-frame state summaries read from simulator state, the facts the reasoning templates are grounded in.

Every suite gives the gripper opening and hand position (the contract's proprioception) and the privileged
progress. Where the suite exposes more, the summary adds the task object's distance to the hand, its remaining
distance (or joint travel) to the goal, its height above where it started, and whether it is grasped:
- Meta-World: hand = `tcp_center`, object = `_get_pos_objects()[:3]`, remaining = the same distance the progress
  formula uses (`obj_to_target`, or the success test as a distance for its five special families); grasped =
  gripper closed (< 85 % open) within 4 cm of the object, for tasks that pick an object up.
- RoboSuite: eef site and object bodies of each progress family; grasped = RoboSuite's `_check_grasp`;
  Door: handle distance and hinge angle.
- ManiSkill: `privileged_state()` (TCP, object, goal, ManiSkill's own grasp test).
- LIBERO and anything else: proprioception and progress only (the templates fall back to hand motion).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np

GRASP_OPENING = 0.85    # Meta-World: fingers closed past this fraction of fully open ...
GRASP_DISTANCE = 0.04   # ... with the object centre this close (m) counts as holding it


@dataclasses.dataclass(frozen=True)
class TaskTerms:
    """How the reasoning names a task's parts: the object handled, the goal, the kind of task."""

    object: str = "the object"     # what the hand reaches for
    goal: str = "the goal"         # where it has to end up
    kind: str = "pick"             # reach | pick | lift | push | articulate | tool | door
    moved: str = ""                # what the remaining distance measures, when not the object (tool tasks)

    @property
    def target(self) -> str:
        """The thing whose distance to the goal is tracked."""
        return self.moved or self.object


@dataclasses.dataclass(frozen=True)
class StateSummary:
    """What the simulator says about one frame (lengths in metres; None = the suite does not expose it)."""

    progress: float
    success: bool
    gripper_opening: float                  # 0 closed .. 1 open
    hand: tuple                             # EE position (m), base or world frame: only differences are used
    hand_to_object: Optional[float] = None  # reach tasks: hand to the goal
    object_to_goal: Optional[float] = None  # remaining distance or joint travel of the tracked thing
    object_height: Optional[float] = None   # object height above its height at reset
    grasped: Optional[bool] = None
    door_angle: Optional[float] = None      # degrees the door has swung open (RoboSuite Door)
    handle_angle: Optional[float] = None    # degrees the door handle is turned (RoboSuite Door; 45 unlatches)


_MW = {  # Meta-World task prefix -> (object, goal, kind, moved)
    "assembly": ("the ring", "the peg", "pick", ""), "basketball": ("the ball", "the hoop", "pick", ""),
    "bin-picking": ("the cube", "the right bin", "pick", ""), "box-close": ("the lid", "the box", "pick", ""),
    "button-press": ("the button", "its pressed position", "articulate", ""),
    "coffee-button": ("the coffee machine button", "its pressed position", "articulate", ""),
    "coffee-pull": ("the mug", "the target spot", "pick", ""),
    "coffee-push": ("the mug", "the spot under the machine", "pick", ""),
    "dial-turn": ("the dial", "the target angle", "articulate", ""),
    "disassemble": ("the ring", "the top of the peg", "pick", ""),
    "door-close": ("the door handle", "the closed position", "articulate", ""),
    "door-open": ("the door handle", "the open position", "articulate", ""),
    "door-lock": ("the lock", "the locked position", "articulate", ""),
    "door-unlock": ("the lock", "the unlocked position", "articulate", ""),
    "hand-insert": ("the block", "the hole", "pick", ""),
    "drawer-close": ("the drawer handle", "the closed position", "articulate", ""),
    "drawer-open": ("the drawer handle", "the open position", "articulate", ""),
    "faucet": ("the faucet handle", "the target angle", "articulate", ""),
    "hammer": ("the hammer", "the wall", "tool", "the nail"),
    "handle-press": ("the handle", "the pressed position", "articulate", ""),
    "handle-pull": ("the handle", "the raised position", "articulate", ""),
    "lever-pull": ("the lever", "the raised position", "articulate", ""),
    "pick-place": ("the puck", "the goal", "pick", ""), "pick-out-of-hole": ("the peg", "the goal", "pick", ""),
    "plate-slide": ("the plate", "the goal", "push", ""), "peg-insert": ("the peg", "the hole", "pick", ""),
    "peg-unplug": ("the peg", "the unplugged position", "pick", ""),
    "soccer": ("the ball", "the goal", "push", ""),
    "stick-push": ("the stick", "the goal", "tool", "the thermos"),
    "stick-pull": ("the stick", "the goal", "tool", "the thermos"),
    "push": ("the puck", "the goal", "push", ""), "reach": ("the goal position", "the goal position", "reach", ""),
    "shelf-place": ("the block", "the shelf", "pick", ""), "sweep": ("the puck", "the goal", "push", ""),
    "window": ("the window handle", "the goal position", "articulate", ""),
}
_RS = {  # RoboSuite progress family -> terms
    "lift": TaskTerms("the cube", "the lift height", "lift"),
    "stack": TaskTerms("the red cube", "the top of the green cube", "pick"),
    "pick_place": TaskTerms("the can", "its bin", "pick"),
    "nut_assembly": TaskTerms("the square nut", "the square peg", "pick"),
    "door": TaskTerms("the door handle", "the open position", "door"),
}
_MS = {"pick_place": TaskTerms("the red cube", "the green sphere", "pick"),
       "push": TaskTerms("the blue cube", "the target", "push")}


def task_terms(env) -> TaskTerms:
    """The TaskTerms of an env's task (generic wording where the task is not listed)."""
    options = getattr(getattr(env, "spec", None), "options", {}) or {}
    if env.suite == "metaworld":
        for prefix, (obj, goal, kind, moved) in sorted(_MW.items(), key=lambda kv: -len(kv[0])):
            if env.task_name.startswith(prefix):
                return TaskTerms(obj, goal, kind, moved)
    if env.suite == "robosuite":
        return _RS.get(options.get("progress", ""), TaskTerms())
    if env.suite == "maniskill":
        return _MS.get(options.get("progress", ""), TaskTerms())
    return TaskTerms()


class StateReader:
    """Reads a StateSummary from an env after each reset/step (call `reset` after env.reset)."""

    def __init__(self, env) -> None:
        self.env = env
        self.terms = task_terms(env)
        self._z0: Optional[float] = None
        self._held = False

    def reset(self) -> StateSummary:
        """Forget the previous episode's resting height and read the first summary."""
        self._z0, self._held = None, False
        return self.read()

    def read(self) -> StateSummary:
        """The summary of the env's current state."""
        env = self.env
        proprio = env.proprio()
        base = dict(progress=float(env.privileged_progress()), success=bool(env.true_success()),
                    gripper_opening=float(proprio.gripper_opening),
                    hand=tuple(float(v) for v in proprio.ee_position))
        # Suite readers take the gripper opening already read (Meta-World's grasp test needs it) and add fields.
        reader = {"metaworld": self._metaworld, "robosuite": self._robosuite, "maniskill": self._maniskill}
        extra = reader[env.suite](base["gripper_opening"]) if env.suite in reader else {}
        if "object_z" in extra:
            # Heights count from where the object rests before it is first held: objects dropped in at reset
            # (RoboSuite) settle for a few steps, and that settling is no lift.
            z = extra.pop("object_z")
            self._held = self._held or bool(extra.get("grasped"))
            if not self._held:
                self._z0 = z if self._z0 is None else min(self._z0, z)
            extra["object_height"] = z - (z if self._z0 is None else self._z0)
        return StateSummary(**base, **extra)

    def _metaworld(self, opening: float) -> dict:
        raw = self.env.raw
        hand = np.asarray(raw.tcp_center, dtype=float)
        obj = np.asarray(raw._get_pos_objects()[:3], dtype=float)
        goal = np.asarray(raw._target_pos, dtype=float)
        if self.terms.kind == "reach":
            return {"hand_to_object": _norm(hand - goal), "object_to_goal": _norm(hand - goal)}
        near = _norm(hand - obj)
        grasped = self.terms.kind in ("pick", "tool") and opening < GRASP_OPENING and near < GRASP_DISTANCE
        return {"hand_to_object": near, "object_to_goal": _metaworld_remaining(self.env, obj, goal),
                "object_z": float(obj[2]), "grasped": bool(grasped)}

    def _robosuite(self, opening: float) -> dict:
        raw = self.env.raw
        family = self.env.spec.options.get("progress", "lift")
        eef = np.array(raw.sim.data.site_xpos[raw.robots[0].eef_site_id["right"]])
        gripper = raw.robots[0].gripper
        if family == "door":
            angle = float(raw.sim.data.qpos[raw.hinge_qpos_addr])
            handle = abs(float(raw.sim.data.qpos[raw.handle_qpos_addr])) if raw.use_latch else math.pi / 4
            return {"hand_to_object": _norm(np.asarray(raw._gripper_to_handle)),
                    "object_to_goal": max(0.3 - angle, 0.0), "door_angle": math.degrees(angle),
                    "handle_angle": math.degrees(handle)}
        body, geoms, goal = _robosuite_parts(raw, family)
        obj = np.array(raw.sim.data.body_xpos[body])
        if family == "lift":
            remaining = max(float(raw.model.mujoco_arena.table_offset[2]) + 0.04 - obj[2], 0.0)
        else:
            remaining = _norm((obj - goal)[:2]) if family != "stack" else _norm(obj - goal)
        return {"hand_to_object": _norm(eef - obj), "object_to_goal": remaining, "object_z": float(obj[2]),
                "grasped": bool(raw._check_grasp(gripper=gripper, object_geoms=geoms))}

    def _maniskill(self, opening: float) -> dict:
        state = self.env.privileged_state()
        if "object_pos" not in state:
            return {}
        out = {"hand_to_object": _norm(state["tcp_pos"] - state["object_pos"]),
               "object_z": float(state["object_pos"][2]), "grasped": bool(state.get("grasped", False))}
        if "goal_pos" in state:
            axes = slice(0, 2) if self.terms.kind == "push" else slice(0, 3)
            out["object_to_goal"] = _norm((state["object_pos"] - state["goal_pos"])[axes])
        return out


def _norm(vector) -> float:
    return float(np.linalg.norm(np.asarray(vector, dtype=float)))


def _metaworld_remaining(env, obj: np.ndarray, goal: np.ndarray) -> float:
    """The object's remaining distance as sole_r1_sim.progress.MetaWorldProgress measures it, per family."""
    family = env.spec.options.get("progress", "object")
    if family == "object_to_goal":
        return _norm(obj - goal)
    if family == "object_x_to_goal":
        return float(abs(obj[0] - goal[0]))
    if family == "object_below_goal":
        return float(max(goal[2] - obj[2], 0.0))
    if family == "nail":
        return float(max(0.09 - float(env.raw.data.joint("NailSlideJoint").qpos[0]), 0.0))
    # The env keeps Meta-World's last info dict; evaluating it again would cost a reward computation.
    info = getattr(env, "_info", {}) or {}
    return float(info.get("obj_to_target", _norm(obj - goal)))


def _robosuite_parts(raw, family: str):
    """(object body id, object geoms for the grasp test, goal position) of a RoboSuite progress family."""
    if family == "lift":
        return raw.cube_body_id, raw.cube, None
    if family == "stack":
        top = np.array(raw.sim.data.body_xpos[raw.cubeB_body_id])
        top[2] += raw.cubeB.size[2] + raw.cubeA.size[2]
        return raw.cubeA_body_id, raw.cubeA, top
    name = raw.obj_to_use
    if family == "pick_place":
        model = raw.objects[[o.name for o in raw.objects].index(name)]
        goal = np.asarray(raw.target_bin_placements[raw.object_to_id[name.lower()]])
    else:  # nut_assembly
        model = raw.nuts[[n.name for n in raw.nuts].index(name)]
        peg = raw.peg1_body_id if raw.nut_to_id[name.lower().replace("nut", "")] == 0 else raw.peg2_body_id
        goal = np.array(raw.sim.data.body_xpos[peg])
    return raw.obj_body_id[name], model, goal
