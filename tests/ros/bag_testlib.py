"""A synthetic episode bag, written without ROS exactly as the recorder writes one (for replay and export tests)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from sole_r1_ros.logic.bag_files import TOPIC_BY_ROLE, TOPICS, EpisodeBagWriter, typestore

T0 = 1_700_000_000 * 10**9
PERIOD = 100_000_000  # 10 Hz


@dataclasses.dataclass
class SyntheticEpisode:
    """What was written, to compare with what is read back."""

    path: Path
    shoulder: list
    wrist: list
    positions: np.ndarray      # (N, 3) EE positions, one per frame
    actions: np.ndarray        # (N, 7) command translation, rotation, gripper answering each frame
    gripper: np.ndarray        # (N,) opening
    privileged: np.ndarray     # (N,) privileged progress %


def _msg(msgtype: str, **fields):
    return typestore().types[msgtype](**fields)


def _header(ns: int):
    time = _msg("builtin_interfaces/msg/Time", sec=ns // 10**9, nanosec=ns % 10**9)
    return _msg("std_msgs/msg/Header", stamp=time, frame_id="base")


def _image(ns: int, frame: np.ndarray):
    h, w = frame.shape[:2]
    return _msg("sensor_msgs/msg/Image", header=_header(ns), height=h, width=w, encoding="rgb8", is_bigendian=0,
                step=w * 3, data=frame.reshape(-1).copy())


def _vector(name: str, values) -> object:
    return _msg(name, x=float(values[0]), y=float(values[1]), z=float(values[2]))


def scene(size: tuple, k: int, rng: np.random.Generator) -> np.ndarray:
    """A camera-like frame (smooth gradient, a moving block, mild noise): video codecs keep it close to exact."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    frame = np.stack([x * 200 // w, y * 200 // h, np.full((h, w), 90)], axis=2).astype(np.int16)
    top, left = (2 * k) % (h - 8), (3 * k) % (w - 8)
    frame[top:top + 8, left:left + 8] = (230, 40, 40)
    return np.clip(frame + rng.integers(-3, 4, frame.shape), 0, 255).astype(np.uint8)


def write_episode(path: Path, frames: int = 25, episode_id: int = 4, size: tuple = (32, 40),
                  task: str = "Reach the red goal.", with_privileged: bool = True, success: bool = True,
                  estimate_every: int = 5) -> SyntheticEpisode:
    """Write one episode bag: frames at 10 Hz with proprio, commands, estimates and episode events."""
    rng = np.random.default_rng(episode_id)
    store = typestore()
    writer = EpisodeBagWriter(path, TOPICS, {"task": task, "episode_id": episode_id, "rewarder": "oracle",
                                             "config_hash": "abc", "git_revision": "test"}, chunk_bytes=32 * 1024)
    out = SyntheticEpisode(path, [], [], np.zeros((frames, 3)), np.zeros((frames, 7)), np.zeros(frames),
                           np.linspace(0.0, 100.0 if success else 40.0, frames) if with_privileged
                           else np.full(frames, np.nan))

    def put(role: str, ns: int, msg, offset: int = 0) -> None:
        topic = TOPIC_BY_ROLE[role]
        writer.write(topic.name, ns + offset, bytes(store.serialize_cdr(msg, topic.msgtype)))

    def info(event: int, ns: int, k: int, privileged: float):
        return _msg("sole_r1/msg/EpisodeInfo", header=_header(ns), episode_id=episode_id, event=event, task=task,
                    task_name="reach-v3", step_count=k, perceived_progress=0.0,
                    end_reason="time_limit" if event == 2 else "", true_success_known=with_privileged,
                    true_success=success, privileged_progress=privileged)

    put("estop", T0 - PERIOD, _msg("std_msgs/msg/Bool", data=False))
    put("episode", T0 - 1000, info(0, T0 - 1000, 0, out.privileged[0]))
    for k in range(frames):
        ns = T0 + k * PERIOD
        shoulder, wrist = scene(size, k, rng), scene(size, frames - k, rng)
        out.shoulder.append(shoulder)
        out.wrist.append(wrist)
        out.positions[k] = [0.4 + 0.01 * k, 0.0, 0.2 - 0.005 * k]
        out.gripper[k] = 1.0 - k / frames
        out.actions[k] = [0.01, 0.0, -0.005, 0.0, 0.0, 0.02, 1.0 if k % 2 else -1.0]
        put("shoulder", ns, _image(ns, shoulder), 1000)
        put("wrist", ns, _image(ns, wrist), 2000)
        put("joint_states", ns, _msg("sensor_msgs/msg/JointState", header=_header(ns), name=[f"j{i}" for i in range(7)],
                                     position=np.arange(7.0) * 0.1 + k, velocity=np.zeros(0), effort=np.zeros(0)), 3000)
        put("gripper", ns, _msg("sensor_msgs/msg/JointState", header=_header(ns), name=["opening"],
                                position=np.array([out.gripper[k]]), velocity=np.zeros(0), effort=np.zeros(0)), 4000)
        pose = _msg("geometry_msgs/msg/Pose", position=_msg("geometry_msgs/msg/Point", x=out.positions[k][0],
                                                           y=out.positions[k][1], z=out.positions[k][2]),
                    orientation=_msg("geometry_msgs/msg/Quaternion", x=1.0, y=0.0, z=0.0, w=0.0))
        put("ee_pose", ns, _msg("geometry_msgs/msg/PoseStamped", header=_header(ns), pose=pose), 5000)
        put("episode", ns, info(1, ns, k, out.privileged[k]), 6000)
        a = out.actions[k]
        command = _msg("sole_r1/msg/EEDeltaCommand", header=_header(ns), episode_id=episode_id,
                       translation=_vector("geometry_msgs/msg/Vector3", a[:3]),
                       rotation=_vector("geometry_msgs/msg/Vector3", a[3:6]), gripper=float(a[6]), hold=False)
        put("command", ns, command, 30_000_000)  # the learner answers 30 ms after the frame
        if k % estimate_every == 0 and k > 0:
            estimate = _msg("sole_r1/msg/ProgressEstimate", header=_header(ns), episode_id=episode_id, task=task,
                            progress=float(out.privileged[k]) if with_privileged else 10.0 * k / estimate_every,
                            reasoning="moving", raw_text="<think>moving</think><answer>x</answer>", valid=True,
                            query_index=k // estimate_every, frames_used=k + 1, latency=0.05, rewarder="oracle",
                            privileged=with_privileged)
            put("progress", ns, estimate, 50_000_000)
    end = T0 + frames * PERIOD
    put("episode", end, info(2, end, frames, out.privileged[-1]))
    writer.close({"end_reason": "time_limit", "complete": "true",
                  "true_success": str(success).lower() if with_privileged else "unknown"})
    return out
