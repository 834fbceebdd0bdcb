"""Off-screen camera rendering for MuJoCo-based suites, with optional render tuning.

One `CameraRig` per env: one GL context and one MuJoCo render context, created once and reused for every camera
and every step (creating contexts per frame or per reset is what makes the suites' default paths slow).
Tuning (`tuned=True`) turns off what costs most on a CPU rasteriser and adds nothing a 128x128 policy image needs:
the 4096x4096 shadow map, planar reflections and off-screen multisampling, and shrinks the off-screen buffer to
the image size. `tuned=False` leaves the model's visual settings exactly as the suite ships them.
Images come back uint8 HxWx3 with a top-left origin.
"""
from __future__ import annotations

import atexit
import dataclasses
import weakref
from typing import Optional, Sequence

import mujoco  # the package __init__ has chosen the GL backend (MUJOCO_GL) before this import
import numpy as np

ORIENTATIONS = ("none", "rot180", "flipud", "fliplr")


@dataclasses.dataclass(frozen=True)
class FreeCameraPose:
    """A camera that is not in the model: MuJoCo free-camera parameters (degrees, metres)."""

    lookat: tuple[float, float, float]
    distance: float
    azimuth: float
    elevation: float

    def __post_init__(self) -> None:
        if len(self.lookat) != 3:
            raise ValueError(f"free camera lookat needs 3 values, got {self.lookat}")
        if not self.distance > 0:
            raise ValueError(f"free camera distance must be > 0, got {self.distance}")


@dataclasses.dataclass(frozen=True)
class CameraSpec:
    """One camera of a rig: a model camera by name, or a free camera pose; plus an orientation fix."""

    role: str                                # "shoulder" or "wrist" (key of the rendered dict)
    name: Optional[str] = None               # camera name in the MuJoCo model
    free: Optional[FreeCameraPose] = None    # used when `name` is None
    orientation: str = "none"                # fix applied after read-back: none | rot180 | flipud | fliplr

    def __post_init__(self) -> None:
        if (self.name is None) == (self.free is None):
            raise ValueError(f"camera '{self.role}': give exactly one of `name` or `free`")
        if self.orientation not in ORIENTATIONS:
            raise ValueError(
                f"camera '{self.role}': orientation must be one of {ORIENTATIONS}, got {self.orientation!r}"
            )

    @classmethod
    def from_dict(cls, role: str, spec: "str | dict") -> "CameraSpec":
        """Build from YAML: a camera name, or {name|free: {...}, orientation: ...}."""
        if isinstance(spec, str):
            return cls(role=role, name=spec)
        unknown = set(spec) - {"name", "free", "orientation"}
        if unknown:
            raise ValueError(f"camera '{role}': unknown keys {sorted(unknown)} (allowed: name, free, orientation)")
        free = spec.get("free")
        free_pose = None
        if free:
            free_pose = FreeCameraPose(**{k: (tuple(v) if k == "lookat" else float(v)) for k, v in free.items()})
        return cls(role=role, name=spec.get("name"), free=free_pose, orientation=spec.get("orientation", "none"))


@dataclasses.dataclass(frozen=True)
class RenderSettings:
    """Image size, tuning switch and which geom groups are drawn."""

    height: int = 128
    width: int = 128
    tuned: bool = True
    # MuJoCo draws groups 0-2 by default; RoboSuite keeps collision meshes in group 0 and hides them.
    geom_groups: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self) -> None:
        if not (8 <= self.height <= 4096 and 8 <= self.width <= 4096):
            raise ValueError(f"image size must be within 8..4096 pixels, got {self.height}x{self.width}")


_LIVE_RIGS: "weakref.WeakSet[CameraRig]" = weakref.WeakSet()
_EXIT_HOOK_REGISTERED = False


def _close_live_rigs() -> None:
    # Free GL contexts before the EGL display is torn down at exit, which otherwise prints EGLError noise.
    for rig in list(_LIVE_RIGS):
        rig.close()


def _register_exit_hook() -> None:
    # atexit runs hooks last-in first-out; mujoco.egl registers eglTerminate when the first context is made, so
    # registering after that context makes our hook run first.
    global _EXIT_HOOK_REGISTERED
    if not _EXIT_HOOK_REGISTERED:
        atexit.register(_close_live_rigs)
        _EXIT_HOOK_REGISTERED = True


def tune_model_visuals(model: mujoco.MjModel, settings: RenderSettings) -> None:
    """Apply the cheap-rendering visual options to `model` (visual fields only; physics is untouched)."""
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0
    model.vis.global_.offwidth = settings.width
    model.vis.global_.offheight = settings.height


class CameraRig:
    """Renders a fixed set of cameras of one MjModel, reusing one context and preallocated buffers."""

    def __init__(self, model: mujoco.MjModel, cameras: Sequence[CameraSpec], settings: RenderSettings) -> None:
        self.model = model
        self.settings = settings
        self.cameras = tuple(cameras)
        if settings.tuned:
            tune_model_visuals(model, settings)
        else:
            # Suite defaults, only grown if the requested image is larger than the model's buffer.
            model.vis.global_.offwidth = max(model.vis.global_.offwidth, settings.width)
            model.vis.global_.offheight = max(model.vis.global_.offheight, settings.height)
        self._mjv_cameras = [self._make_camera(spec) for spec in self.cameras]
        self._gl = mujoco.GLContext(settings.width, settings.height)
        _register_exit_hook()
        self._gl.make_current()
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._scene = mujoco.MjvScene(model, maxgeom=max(1000, 2 * model.ngeom + 100))
        if settings.tuned:
            self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._option = mujoco.MjvOption()
        for group in range(len(self._option.geomgroup)):
            self._option.geomgroup[group] = 1 if group in settings.geom_groups else 0
        self._viewport = mujoco.MjrRect(0, 0, settings.width, settings.height)
        self._buffer = np.empty((settings.height, settings.width, 3), dtype=np.uint8)
        self._closed = False
        _LIVE_RIGS.add(self)

    def _make_camera(self, spec: CameraSpec) -> mujoco.MjvCamera:
        camera = mujoco.MjvCamera()
        if spec.name is not None:
            camera_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, spec.name)
            if camera_id < 0:
                names = [self.model.camera(i).name for i in range(self.model.ncam)]
                raise ValueError(f"camera '{spec.name}' ({spec.role}) is not in the model; available: {names}")
            camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
            camera.fixedcamid = camera_id
        else:
            camera.type = mujoco.mjtCamera.mjCAMERA_FREE
            camera.lookat[:] = spec.free.lookat
            camera.distance = spec.free.distance
            camera.azimuth = spec.free.azimuth
            camera.elevation = spec.free.elevation
        return camera

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """Render every camera for the current `data`; returns {role: uint8 HxWx3, top-left origin} (fresh arrays)."""
        if self._closed:
            raise RuntimeError("CameraRig.render called after close(); create a new env")
        self._gl.make_current()
        images = {}
        for spec, camera in zip(self.cameras, self._mjv_cameras):
            mujoco.mjv_updateScene(
                self.model, data, self._option, None, camera, mujoco.mjtCatBit.mjCAT_ALL, self._scene
            )
            if self.settings.tuned:
                cull_outside_frustum(self._scene, self.settings.width / self.settings.height)
            mujoco.mjr_render(self._viewport, self._scene, self._context)
            mujoco.mjr_readPixels(self._buffer, None, self._viewport, self._context)
            # OpenGL reads bottom-up; the flip makes row 0 the top of the picture.
            images[spec.role] = orient(self._buffer[::-1], spec.orientation)
        return images

    def close(self) -> None:
        """Free the GL and MuJoCo render contexts (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._gl.make_current()
            self._context.free()
            self._gl.free()
        except Exception:  # noqa: BLE001 -- best effort during teardown; nothing useful to report
            pass
        _LIVE_RIGS.discard(self)


def cull_outside_frustum(scene: mujoco.MjvScene, aspect: float) -> int:
    """Hide scene geoms whose bounding sphere lies outside the view frustum; returns how many were hidden.

    The CPU rasteriser transforms every vertex of every geom, visible or not; a wrist camera sees a few of a robot's
    ~170k mesh triangles, so dropping the rest triples its frame rate. Pixels are unchanged as long as shadows and
    reflections are off (tuned mode), since a hidden geom could otherwise still cast a shadow into the view.
    """
    gl_camera = scene.camera[0]
    if gl_camera.orthographic:
        return 0
    position = np.asarray(gl_camera.pos)
    forward = np.asarray(gl_camera.forward)
    up = np.asarray(gl_camera.up)
    right = np.cross(forward, up)
    near = gl_camera.frustum_near
    tan_v = max(abs(gl_camera.frustum_top), abs(gl_camera.frustum_bottom)) / near
    tan_h = tan_v * aspect
    # Distance from a plane through the eye to a sphere centre, scaled for the slanted side planes.
    slack_v, slack_h = np.sqrt(1.0 + tan_v**2), np.sqrt(1.0 + tan_h**2)
    hidden = 0
    for geom in scene.geoms[: scene.ngeom]:
        radius = geom.modelrbound
        if radius <= 0 or geom.type == mujoco.mjtGeom.mjGEOM_NONE:
            continue  # planes and other unbounded geoms are always drawn
        offset = np.asarray(geom.pos) - position
        depth = offset @ forward
        if (depth + radius < near
                or abs(offset @ right) - radius * slack_h > depth * tan_h
                or abs(offset @ up) - radius * slack_v > depth * tan_v):
            geom.type = mujoco.mjtGeom.mjGEOM_NONE
            hidden += 1
    return hidden


def orient(image: np.ndarray, orientation: str) -> np.ndarray:
    """Return a contiguous copy of `image` with an orientation fix applied."""
    if orientation == "rot180":
        image = image[::-1, ::-1]
    elif orientation == "flipud":
        image = image[::-1]
    elif orientation == "fliplr":
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def free_camera_mirroring(
    model: mujoco.MjModel, data: mujoco.MjData, camera_name: str, distance: float = 1.5
) -> FreeCameraPose:
    """Pose of a free camera that sees the scene as `camera_name` would if mirrored across the world x-z plane."""
    camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera_name)
    if camera_id < 0:
        raise ValueError(f"camera '{camera_name}' is not in the model")
    mirror = np.diag([1.0, -1.0, 1.0])
    position = mirror @ data.cam_xpos[camera_id]
    forward = mirror @ -data.cam_xmat[camera_id].reshape(3, 3)[:, 2]  # cameras look along their -z axis
    return FreeCameraPose(
        lookat=tuple(float(v) for v in position + distance * forward),
        distance=distance,
        azimuth=float(np.degrees(np.arctan2(forward[1], forward[0]))),
        elevation=float(np.degrees(np.arcsin(np.clip(forward[2], -1.0, 1.0)))),
    )
