"""fake_franka: a MuJoCo twin of a Franka + Hand that serves the franka_ros2 interfaces franka_bridge uses.

Served (same names, types, QoS and behaviour as franka_ros2, defaults in sole_r1_ros.ros.franka_interfaces):
- FrankaRobotState on the robot-state topic at `state_rate_hz` (up to 1 kHz, franka_ros2's controller rate;
  robot_mode, o_t_ee, o_t_ee_d, joint states); finger joint states on `franka_gripper/joint_states`;
- the target-pose subscription of the chosen controller (`target_controller`: crisp_controllers' `target_pose`,
  depth 1, or franka_ros2's `cartesian_impedance_example_controller/equilibrium_pose`), PoseStamped, base frame;
- franka_msgs actions Move / Grasp / Homing (gripper) and ErrorRecovery;
- both camera topics (+ CameraInfo), rendered from the twin, like the real camera nodes publish them, in
  `<name>_camera_optical_frame` frames placed by static transforms on /tf_static (when tf2_msgs is installed).
Test hooks (std_srvs/Trigger): `~/press_user_stop`, `~/release_user_stop`, `~/trigger_reflex` inject the robot
modes a real arm reports (USER_STOPPED, then IDLE until error recovery; REFLEX), `~/reset_scene` puts arm, gripper
and cube back (an operator resetting the scene by hand).

The physics runs at 1 kHz and follows the wall clock: each state tick steps the twin by the time elapsed since
the last one. When the CPU cannot keep up the twin runs slower than real time (counted as `overruns`) rather than
bursting to catch up.
"""
from __future__ import annotations

import dataclasses
import time
import struct
from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.node import Node
from rclpy.serialization import serialize_message
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger

from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros import franka_interfaces as fi
from sole_r1_ros.ros.conventions import ConfigError, param
from sole_r1_ros.ros.images import camera_info_from_fov, numpy_to_image
from sole_r1_ros.ros.msg_convert import pose_from_arrays, pose_to_arrays
from sole_r1_ros.ros.static_tf import StaticTransforms

MAX_CATCH_UP_S = 0.05       # at most this much simulated time per tick, however late the tick is
PHYSICS_TICK_HZ = 250.0      # physics ticks per second at most (each steps the 1 kHz physics by the elapsed time)


@dataclasses.dataclass
class FakeFrankaConfig:
    """Parameters of fake_franka (it also declares FrankaInterfaceNames, the names franka_bridge uses)."""

    arm_id: str = param("fr3", "joint name prefix, as franka_ros2 names them: fr3 or panda")
    base_frame: str = param("base", "frame of poses (the robot base)")
    state_rate_hz: float = param(100.0, "FrankaRobotState rate (physics runs at 1 kHz in between); 1000 = the real "
                                 "robot's", low=1.0, high=1000.0)
    state_build_rate_hz: float = param(100.0, "states rebuilt from the physics at most this often; in between the "
                                       "newest is re-sent with a fresh stamp", low=1.0, high=1000.0)
    publish_cameras: bool = param(True, "render and publish the shoulder and wrist cameras")
    camera_rate_hz: float = param(10.0, "camera frame rate (both cameras)", low=0.5, high=60.0)
    image_width: int = param(128, "camera image width, pixels", low=16, high=1024)
    image_height: int = param(128, "camera image height, pixels", low=16, high=1024)
    shoulder_image_topic: str = param(conv.SHOULDER_IMAGE, "shoulder camera Image topic")
    wrist_image_topic: str = param(conv.WRIST_IMAGE, "wrist camera Image topic")
    detailed_meshes: bool = param(False, "render robosuite's detailed meshes (~6x slower on a CPU)")
    start_position: list = param([0.45, 0.0, 0.25], "EE start position, base frame, metres")
    cube_position: list = param([0.5, 0.0, 0.025], "cube start position, base frame, metres")

    def __post_init__(self) -> None:
        for name in ("start_position", "cube_position"):
            if len(getattr(self, name)) != 3:
                raise ConfigError(f"parameter '{name}' needs 3 values (x, y, z metres), got {getattr(self, name)}")


class FakeFranka(Node):
    """The twin behind franka_ros2-shaped topics, actions and test services."""

    def __init__(self) -> None:
        super().__init__("fake_franka")
        self.config = cfg = conv.declare_config(self, FakeFrankaConfig)
        self.names = names = conv.declare_config(self, fi.FrankaInterfaceNames)
        self.msgs = fi.load_franka_msgs()
        # Imported here so that a missing franka_msgs is reported before the (slower) MuJoCo start.
        from sole_r1_sim.twin.scene import SceneConfig
        from sole_r1_ros.logic.franka.twin import FrankaTwin, TwinConfig

        scene = SceneConfig(cube_position=tuple(cfg.cube_position), image_width=cfg.image_width,
                            image_height=cfg.image_height, detailed_meshes=cfg.detailed_meshes)
        try:
            self.twin = FrankaTwin(TwinConfig(scene=scene, start_position=tuple(cfg.start_position)))
        except (ValueError, FileNotFoundError) as exc:
            raise ConfigError(f"cannot build the twin: {exc}") from exc
        self._arm_names = [f"{cfg.arm_id}_joint{i}" for i in range(1, 8)]
        self._finger_names = [f"{cfg.arm_id}_finger_joint1", f"{cfg.arm_id}_finger_joint2"]
        self._pending: list[tuple] = []           # (twin gripper goal, Future completed when it is done)
        self.overruns = 0

        self._pub_state = self.create_publisher(self.msgs.FrankaRobotState, names.robot_state_topic,
                                                fi.ROBOT_STATE_PUBLISHER_QOS)
        self._pub_fingers = self.create_publisher(JointState, names.gripper_joint_states_topic, conv.RELIABLE_QOS)
        self._target_sub = self.create_subscription(PoseStamped, names.target_topic, self._on_target,
                                                    names.target_qos)
        self._state_bytes: Optional[bytearray] = None
        self._built_at, self._physics_moved = -1.0, True
        self.states_published = 0
        self._pub_diagnostics = self.create_publisher(DiagnosticArray, conv.DIAGNOSTICS, conv.RELIABLE_QOS)
        self.create_timer(1.0, self._publish_diagnostics)
        m = self.msgs
        self._servers = [
            self._action_server(m.Move, names.gripper_move_action, self._execute_move),
            self._action_server(m.Grasp, names.gripper_grasp_action, self._execute_grasp),
            self._action_server(m.Homing, names.gripper_homing_action, self._execute_homing),
            self._action_server(m.ErrorRecovery, names.error_recovery_action, self._execute_error_recovery),
        ]
        for name, callback in (("~/press_user_stop", self._press_user_stop),
                               ("~/release_user_stop", self._release_user_stop),
                               ("~/trigger_reflex", self._trigger_reflex), ("~/reset_scene", self._reset_scene)):
            self.create_service(Trigger, name, callback)
        if cfg.publish_cameras:
            self._cameras = {
                "shoulder": (self.create_publisher(Image, cfg.shoulder_image_topic, conv.IMAGE_PUBLISHER_QOS),
                             self.create_publisher(CameraInfo, _info_topic(cfg.shoulder_image_topic),
                                                   conv.RELIABLE_QOS), scene.shoulder_fovy_deg),
                "wrist": (self.create_publisher(Image, cfg.wrist_image_topic, conv.IMAGE_PUBLISHER_QOS),
                          self.create_publisher(CameraInfo, _info_topic(cfg.wrist_image_topic), conv.RELIABLE_QOS),
                          scene.wrist_fovy_deg),
            }
            self.create_timer(1.0 / cfg.camera_rate_hz, self._publish_cameras)
            self._publish_camera_frames()
        self._wall_start, self._sim_start = time.monotonic(), self.twin.time
        # Physics catches up with the wall clock at most PHYSICS_TICK_HZ times a second (several 1 ms steps a tick);
        # a faster state rate gets its own timer that only re-sends the newest state, so 1 kHz stays affordable.
        physics_hz = min(cfg.state_rate_hz, PHYSICS_TICK_HZ)
        self.create_timer(1.0 / physics_hz, self._tick)
        if cfg.state_rate_hz > physics_hz:
            self.create_timer(1.0 / cfg.state_rate_hz, self._publish_state)
        self.get_logger().info(
            f"Franka twin up: state on {self._pub_state.topic_name} at {cfg.state_rate_hz:g} Hz, targets from "
            f"{self._target_sub.topic_name} ({names.target_controller}), cameras "
            f"{'on' if cfg.publish_cameras else 'off'}; inject stops with "
            f"{self.get_fully_qualified_name()}/press_user_stop | trigger_reflex")

    def _action_server(self, action_type, name: str, execute) -> ActionServer:
        return ActionServer(self, action_type, name, execute_callback=execute,
                            goal_callback=lambda _goal: GoalResponse.ACCEPT,
                            cancel_callback=lambda _goal: CancelResponse.REJECT)

    # ---- physics and state ----------------------------------------------------------------------------------
    def _tick(self) -> None:
        behind = (time.monotonic() - self._wall_start) - (self.twin.time - self._sim_start)
        if behind > MAX_CATCH_UP_S:
            self.overruns += 1
            self._wall_start += behind - MAX_CATCH_UP_S     # give up the lost time instead of bursting
            behind = MAX_CATCH_UP_S
        if behind >= self.twin.model.opt.timestep:
            self.twin.step(behind)
        for goal, done in [p for p in self._pending if p[0].done]:
            done.set_result(goal)
        self._pending = [p for p in self._pending if not p[0].done]
        self._physics_moved = True
        if self.config.state_rate_hz <= PHYSICS_TICK_HZ:
            self._publish_state()

    def _publish_state(self) -> None:
        # Building and converting a FrankaRobotState in Python takes ~0.5 ms: at 1 kHz that alone would fill a core.
        # Between rebuilds the newest serialized state goes out again with a fresh header stamp.
        now = time.monotonic()
        # 0.9: a timer tick that comes a little early must not turn a due rebuild into a re-send.
        due = self._physics_moved and now - self._built_at >= 0.9 / self.config.state_build_rate_hz
        if self._state_bytes is None or due:
            self._state_bytes = bytearray(serialize_message(self._build_state()))
            self._built_at, self._physics_moved = now, False
        else:
            _restamp(self._state_bytes, self.get_clock().now().nanoseconds)
        self._pub_state.publish(bytes(self._state_bytes))
        self.states_published += 1

    def _publish_diagnostics(self) -> None:
        """States sent so far and physics overruns (the twin fell behind real time): is the twin keeping its rate?"""
        values = {"robot_mode": self.twin.mode.name, "states_published": self.states_published,
                  "state_rate_hz": self.config.state_rate_hz, "overruns": self.overruns}
        self._pub_diagnostics.publish(conv.diagnostics(self, "fake_franka", DiagnosticStatus.OK,
                                                       f"twin {self.twin.mode.name}", values))

    def _build_state(self):
        """A FrankaRobotState from the physics now; also publishes the finger joint states (same rate)."""
        cfg, twin = self.config, self.twin
        stamp = self.get_clock().now().to_msg()
        state = self.msgs.FrankaRobotState()
        state.header.stamp, state.header.frame_id = stamp, cfg.base_frame
        state.robot_mode = int(twin.mode)
        position, quaternion = twin.ee_pose()
        state.o_t_ee = pose_from_arrays(position, quaternion, stamp=stamp, frame_id=cfg.base_frame)
        state.o_t_ee_d = pose_from_arrays(twin.target_position, twin.target_quaternion, stamp=stamp,
                                          frame_id=cfg.base_frame)
        q, dq, tau = twin.arm_joint_state()
        joints = state.measured_joint_state
        joints.header.stamp = stamp
        joints.name, joints.position, joints.velocity, joints.effort = (
            self._arm_names, q.tolist(), dq.tolist(), tau.tolist())
        state.time = twin.time
        state.control_command_success_rate = 1.0
        fingers = JointState(name=self._finger_names, position=twin.finger_positions().tolist())
        fingers.header.stamp = stamp
        self._pub_fingers.publish(fingers)
        return state

    def _on_target(self, msg: PoseStamped) -> None:
        if msg.header.frame_id not in ("", self.config.base_frame):
            self.get_logger().warning(f"target pose in frame '{msg.header.frame_id}' ignored: send it in "
                                      f"'{self.config.base_frame}'", throttle_duration_sec=5.0)
            return
        self.twin.set_target_pose(*pose_to_arrays(msg))

    def _publish_camera_frames(self) -> None:
        """Static transforms of the optical frames: shoulder in the base frame, wrist in the hand's TCP frame."""
        self._static_tf = StaticTransforms(self)
        parents = {"shoulder": self.config.base_frame, "wrist": f"{self.config.arm_id}_hand_tcp"}
        for name, parent in parents.items():
            self._static_tf.add(parent, _optical_frame(name), *self.twin.camera_optical_pose(name))

    def _publish_cameras(self) -> None:
        stamp = self.get_clock().now().to_msg()
        for name, (pub_image, pub_info, fovy) in self._cameras.items():
            rgb = self.twin.render(name)
            frame_id = _optical_frame(name)
            pub_image.publish(numpy_to_image(rgb, "rgb8", stamp=stamp, frame_id=frame_id))
            pub_info.publish(camera_info_from_fov(rgb.shape[1], rgb.shape[0], fovy, frame_id, stamp))

    # ---- actions (coroutines: they wait for the physics without blocking the executor) -----------------------
    async def _run_gripper_goal(self, goal_handle, result_type, kind: str, **fields):
        goal = self.twin.start_gripper_goal(kind, **fields)
        if not goal.done:
            done = Future()
            self._pending.append((goal, done))
            await done
        if goal.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result_type(success=goal.success, error=goal.error)

    async def _execute_move(self, goal_handle):
        request = goal_handle.request
        return await self._run_gripper_goal(goal_handle, self.msgs.Move.Result, "move", width=request.width,
                                            speed=request.speed)

    async def _execute_grasp(self, goal_handle):
        r = goal_handle.request
        return await self._run_gripper_goal(goal_handle, self.msgs.Grasp.Result, "grasp", width=r.width,
                                            speed=r.speed, force=r.force, epsilon_inner=r.epsilon.inner,
                                            epsilon_outer=r.epsilon.outer)

    async def _execute_homing(self, goal_handle):
        return await self._run_gripper_goal(goal_handle, self.msgs.Homing.Result, "homing", width=0.08)

    def _execute_error_recovery(self, goal_handle):
        ok, message = self.twin.error_recovery()
        self.get_logger().info(f"error recovery: {message} (robot mode now {self.twin.mode.name})")
        if ok:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return self.msgs.ErrorRecovery.Result()

    # ---- test hooks -----------------------------------------------------------------------------------------
    def _press_user_stop(self, _request, response):
        self.twin.press_user_stop()
        return self._mode_response(response, True, "user stop pressed")

    def _release_user_stop(self, _request, response):
        ok = self.twin.release_user_stop()
        return self._mode_response(response, ok, "user stop released: run error recovery to move again" if ok
                                   else "the user stop was not pressed")

    def _trigger_reflex(self, _request, response):
        self.twin.trigger_reflex()
        return self._mode_response(response, True, "reflex triggered")

    def _reset_scene(self, _request, response):
        for goal, _done in self._pending:       # the next tick answers them (unsuccessful)
            goal.done, goal.error = True, "aborted: scene reset"
        self.twin.reset()
        self._wall_start, self._sim_start = time.monotonic(), self.twin.time
        return self._mode_response(response, True, "scene reset: arm at the start pose, gripper open")

    def _mode_response(self, response, ok: bool, message: str):
        self._state_bytes = None      # the next state reports the new mode, not a cached one
        response.success, response.message = ok, f"{message} (robot mode {self.twin.mode.name})"
        self.get_logger().warning(response.message)
        return response

    def close(self) -> None:
        """Free the renderer (run_node calls this on shutdown)."""
        for goal, done in self._pending:
            goal.done, goal.error = True, "shutting down"
        self.twin.close()


def _optical_frame(camera: str) -> str:
    """The REP-103 optical frame of a twin camera (z forward, x right, y down)."""
    return f"{camera}_camera_optical_frame"


def _restamp(serialized: bytearray, nanoseconds: int) -> None:
    """Overwrite header.stamp of a serialized message whose first field is a std_msgs/Header.

    CDR: a 4-byte encapsulation header (byte 1 = 1: little endian), then stamp.sec (int32), stamp.nanosec (uint32).
    """
    order = "<" if serialized[1] == 1 else ">"
    struct.pack_into(order + "iI", serialized, 4, nanoseconds // 1_000_000_000, nanoseconds % 1_000_000_000)


def _info_topic(image_topic: str) -> str:
    """The CameraInfo topic beside an image topic (…/image_raw -> …/camera_info)."""
    head, _, _ = image_topic.rpartition("/")
    return f"{head}/camera_info" if head else "camera_info"


def main(args: Optional[list[str]] = None) -> int:
    """Run the fake_franka node."""
    return conv.run_node(FakeFranka, args)


if __name__ == "__main__":
    raise SystemExit(main())
