"""MJCF of the Franka twin: robosuite's Panda arm + Franka Hand meshes, a table, a cube and two cameras.

The arm and hand come from the robosuite package (installed in the project venv; its meshes are not copied into
this repository). The two XML files are merged with ElementTree rather than MjSpec.attach so the result does not
depend on the MjSpec API of one mujoco release: mesh paths are made absolute, the hand body goes into the arm's
flange body `right_hand`, and assets, actuators and sensors are concatenated.

Frames (the same as the real robot's, so the bridge and the safety box see the same numbers):
- world = robot base frame `base` (x forward, y left, z up; origin at the robot foot). The table top is at z = 0.
- site `ee` = franka_ros2's `o_t_ee` frame: on the flange, rotated -45 deg about its z (robosuite's `right_hand`
  body already is), offset 0.1034 m along z to the fingertip centre (Franka Hand TCP). Pointing down it is
  Rx(pi), quaternion (x, y, z, w) = (1, 0, 0, 0).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional

FRANKA_HAND_TCP_OFFSET_M = 0.1034      # flange -> fingertip centre, Franka Hand (libfranka default F_T_EE)
ARM_JOINTS = tuple(f"joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("finger_joint1", "finger_joint2")


@dataclasses.dataclass
class SceneConfig:
    """What goes into the twin's scene besides the arm."""

    cube_position: tuple = (0.5, 0.0, 0.025)   # cube centre at rest, base frame, metres
    cube_half_size_m: float = 0.02
    image_width: int = 128
    image_height: int = 128
    shoulder_camera_position: tuple = (1.3, 0.55, 0.7)     # fixed camera, base frame
    shoulder_camera_target: tuple = (0.4, 0.0, 0.22)       # point it looks at
    shoulder_fovy_deg: float = 50.0
    wrist_fovy_deg: float = 75.0
    detailed_meshes: bool = False              # robosuite's 135k-triangle visual meshes: ~30 ms per 128x128
                                               # render on a CPU (llvmpipe) instead of ~5 ms with the
                                               # collision meshes shown
    timestep_s: float = 0.001                  # 1 kHz physics, like the robot's FCI loop

    def __post_init__(self) -> None:
        if len(self.cube_position) != 3 or len(self.shoulder_camera_position) != 3 \
                or len(self.shoulder_camera_target) != 3:
            raise ValueError("SceneConfig positions need 3 values (x, y, z metres)")
        if not 0.005 <= self.cube_half_size_m <= 0.05:
            raise ValueError(f"SceneConfig.cube_half_size_m must be in [0.005, 0.05], got {self.cube_half_size_m}")
        if self.image_width < 16 or self.image_height < 16:
            raise ValueError("SceneConfig image size must be at least 16x16 pixels")
        if not 0.0 < self.timestep_s <= 0.005:
            raise ValueError(f"SceneConfig.timestep_s must be in (0, 0.005] s, got {self.timestep_s}")


def robosuite_assets_dir() -> Path:
    """robosuite's models/assets folder (found without importing robosuite, which prints warnings on import)."""
    spec = importlib.util.find_spec("robosuite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the Franka twin needs the Panda meshes shipped with robosuite: "
                                "pip install robosuite==1.5.2 (see requirements/lock.txt)")
    assets = Path(list(spec.submodule_search_locations)[0]) / "models" / "assets"
    for part in ("robots/panda/robot.xml", "grippers/panda_gripper.xml"):
        if not (assets / part).is_file():
            raise FileNotFoundError(f"{assets / part} is missing: reinstall robosuite==1.5.2")
    return assets


def _absolute_mesh_paths(root: ET.Element, base: Path) -> None:
    for mesh in root.iter("mesh"):
        if "file" in mesh.attrib:
            mesh.set("file", str((base / mesh.get("file")).resolve()))


HIDDEN_GROUP = 3     # geom/site group the twin's renderer never shows


def _select_meshes(root: ET.Element, detailed: bool) -> None:
    """Keep either the detailed visual meshes (collision geoms hidden) or only the collision meshes, shown."""
    for parent in root.iter():
        for geom in list(parent.findall("geom")):
            visual_only = geom.get("contype") == "0" and geom.get("conaffinity") == "0"
            if visual_only and not detailed:
                parent.remove(geom)
            elif not visual_only and detailed:
                geom.set("group", str(HIDDEN_GROUP))
            elif not visual_only:
                geom.set("group", "1")
                geom.set("material", "finger_mat" if "finger" in geom.get("name", "") or "hand" in
                         geom.get("name", "") else "arm_mat")
    if not detailed:   # meshes no geom uses any more would still be loaded (slowly): drop them
        used = {g.get("mesh") for g in root.iter("geom")}
        asset = root.find("asset")
        for mesh in list(asset.findall("mesh")):
            if mesh.get("name") not in used:
                asset.remove(mesh)


def _look_at_xyaxes(position, target) -> str:
    """MuJoCo `xyaxes` of a camera at `position` looking at `target` with world z up (cameras look along -z)."""
    import numpy as np

    forward = np.asarray(target, float) - np.asarray(position, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return " ".join(f"{v:.6f}" for v in (*right, *up))


def _fmt(values) -> str:
    return " ".join(f"{float(v):g}" for v in values)


def build_scene_xml(config: Optional[SceneConfig] = None) -> str:
    """The twin's complete MJCF as a string (absolute mesh paths: loadable from anywhere)."""
    config = config or SceneConfig()
    assets = robosuite_assets_dir()
    arm = ET.parse(assets / "robots" / "panda" / "robot.xml").getroot()
    hand = ET.parse(assets / "grippers" / "panda_gripper.xml").getroot()
    _absolute_mesh_paths(arm, assets / "robots" / "panda")
    _absolute_mesh_paths(hand, assets / "grippers")
    _select_meshes(arm, config.detailed_meshes)
    _select_meshes(hand, config.detailed_meshes)

    flange = next(b for b in arm.iter("body") if b.get("name") == "right_hand")
    for camera in list(flange.findall("camera")):          # robosuite's eye_in_hand; ours is added below
        flange.remove(camera)
    for body in hand.find("worldbody"):
        flange.append(body)
    ET.SubElement(flange, "site", name="ee", pos=f"0 0 {FRANKA_HAND_TCP_OFFSET_M}", size="0.006",
                  rgba="1 0.2 0.2 0.6", group=str(HIDDEN_GROUP))
    # Wrist camera beside the hand, looking along the fingers and tilted 20 deg towards them (MuJoCo cameras look
    # along their -z axis; xyaxes = camera x and y axes in the flange frame).
    tilt = math.radians(20.0)
    ET.SubElement(flange, "camera", name="wrist", pos="0.08 0 0.03", fovy=f"{config.wrist_fovy_deg:g}",
                  xyaxes=_fmt((0, 1, 0, math.cos(tilt), 0, math.sin(tilt))))

    base = next(b for b in arm.iter("body") if b.get("name") == "base")
    root = ET.Element("mujoco", model="sole_r1_franka_twin")
    ET.SubElement(root, "compiler", angle="radian", autolimits="true")
    ET.SubElement(root, "option", timestep=f"{config.timestep_s:g}", integrator="implicitfast", cone="elliptic")
    visual = ET.SubElement(root, "visual")
    ET.SubElement(visual, "global", offwidth=str(max(config.image_width, 64)),
                  offheight=str(max(config.image_height, 64)))
    ET.SubElement(visual, "quality", shadowsize="0", offsamples="0")
    ET.SubElement(visual, "headlight", ambient="0.45 0.45 0.45", diffuse="0.5 0.5 0.5", specular="0.1 0.1 0.1")

    asset = ET.SubElement(root, "asset")
    for child in list(arm.find("asset")) + list(hand.find("asset")):
        asset.append(child)
    ET.SubElement(asset, "texture", name="floor_tex", type="2d", builtin="checker", rgb1="0.32 0.34 0.36",
                  rgb2="0.26 0.28 0.30", width="256", height="256")
    ET.SubElement(asset, "material", name="floor_mat", texture="floor_tex", texrepeat="8 8")
    ET.SubElement(asset, "material", name="table_mat", rgba="0.62 0.48 0.34 1")
    ET.SubElement(asset, "material", name="cube_mat", rgba="0.85 0.12 0.1 1")
    ET.SubElement(asset, "material", name="arm_mat", rgba="0.92 0.92 0.93 1", specular="0.3")
    ET.SubElement(asset, "material", name="finger_mat", rgba="0.25 0.25 0.27 1", specular="0.3")
    ET.SubElement(asset, "texture", name="sky", type="skybox", builtin="gradient", rgb1="0.55 0.6 0.68",
                  rgb2="0.2 0.22 0.25", width="64", height="64")

    world = ET.SubElement(root, "worldbody")
    ET.SubElement(world, "light", name="top", pos="0.4 0 1.6", dir="0 0 -1", diffuse="0.6 0.6 0.6",
                  castshadow="false")
    ET.SubElement(world, "geom", name="floor", type="plane", pos="0 0 -0.75", size="3 3 0.05",
                  material="floor_mat")
    # Table top at z = 0 (the robot stands on it): a box whose upper face is the base frame's xy plane.
    ET.SubElement(world, "geom", name="table", type="box", pos="0.45 0 -0.025", size="0.6 0.7 0.025",
                  material="table_mat", friction="1 0.005 0.0001")
    ET.SubElement(world, "camera", name="shoulder", pos=_fmt(config.shoulder_camera_position),
                  xyaxes=_look_at_xyaxes(config.shoulder_camera_position, config.shoulder_camera_target),
                  fovy=f"{config.shoulder_fovy_deg:g}")
    world.append(base)
    cube = ET.SubElement(world, "body", name="cube", pos=_fmt(config.cube_position))
    ET.SubElement(cube, "freejoint", name="cube_joint")
    h = config.cube_half_size_m
    ET.SubElement(cube, "geom", name="cube", type="box", size=_fmt((h, h, h)), material="cube_mat", mass="0.05",
                  friction="1.5 0.01 0.0001", condim="4")

    actuator = ET.SubElement(root, "actuator")
    for child in list(arm.find("actuator")) + list(hand.find("actuator")):
        actuator.append(child)
    sensors = hand.find("sensor")
    if sensors is not None:
        root.append(sensors)
    return ET.tostring(root, encoding="unicode")
