"""reward_node on a live ROS graph: failures and recovery, the QueryProgress service, lockstep stamps, privileged
progress, episode resets -- and the reward_replay graph scoring both official Lift videos with the tiny model."""
import re
import threading
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from visualization_msgs.msg import MarkerArray

from sole_r1.msg import EpisodeInfo, ProgressEstimate
from sole_r1.srv import QueryProgress
from sole_r1_model.frames import split_side_by_side
from sole_r1_model.rewarders.oracle import OracleRewarder
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import ConfigError
from sole_r1_ros.logic.frame_reader import FrameReader
from sole_r1_ros.ros.images import numpy_to_image
from sole_r1_ros.nodes.reward_node import RewardNode

from .peers.failing_rewarder import FailingRewarder, RecordingRewarder

LIFT_VIDEO = "robosuite_lift_episode_14_successful_max_reward_100.mp4"
TASK = "Pick up the cube from the table."


@pytest.fixture(scope="module")
def lift_pairs(official_lift):
    """The official Lift episode 14 as (shoulder, wrist) 128x128 RGB pairs."""
    return [split_side_by_side(f) for f in FrameReader(official_lift / "videos" / LIFT_VIDEO, (256, 128))]


@pytest.fixture
def start_node(ros):
    """Factory: start_node(rewarder, **parameters) -> RewardNode spun by its own MultiThreadedExecutor."""
    started = []

    def start(rewarder, **parameters):
        node = RewardNode(rewarder, context=ros.context,
                          parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()])
        executor = MultiThreadedExecutor(context=ros.context)
        executor.add_node(node)
        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        started.append((node, executor, thread))
        return node

    yield start
    for node, executor, thread in started:
        executor.shutdown(timeout_sec=2.0)
        thread.join(2.0)
        node.close()
        node.destroy_node()


class Cameras:
    """Publishes frame pairs (same stamp on both cameras) and episode messages from the test harness."""

    def __init__(self, ros, image_qos=conv.IMAGE_PUBLISHER_QOS):
        self.ros = ros
        self.shoulder = ros.node.create_publisher(Image, conv.SHOULDER_IMAGE, image_qos)
        self.wrist = ros.node.create_publisher(Image, conv.WRIST_IMAGE, image_qos)
        self.episodes = ros.node.create_publisher(EpisodeInfo, conv.EPISODE_INFO, conv.EPISODE_QOS)

    def wait_connected(self, node_name="reward_node"):
        self.ros.wait_for(lambda: self.shoulder.get_subscription_count() and self.wrist.get_subscription_count()
                          and self.episodes.get_subscription_count(), 10, f"{node_name} subscriptions")

    def publish(self, pair, stamp_ns: int):
        stamp = rclpy.time.Time(nanoseconds=stamp_ns).to_msg()
        self.shoulder.publish(numpy_to_image(pair[0], "rgb8", stamp=stamp))
        self.wrist.publish(numpy_to_image(pair[1], "rgb8", stamp=stamp))

    def episode(self, episode_id, event, task="", stamp_ns=0, privileged=float("nan")):
        msg = EpisodeInfo(episode_id=episode_id, event=event, task=task, privileged_progress=privileged)
        msg.header.stamp = rclpy.time.Time(nanoseconds=stamp_ns).to_msg()
        self.episodes.publish(msg)


class Feeder(threading.Thread):
    """Keeps publishing the episode's pairs at `rate` Hz (looping over them) until stopped."""

    def __init__(self, cameras, pairs, rate=10.0):
        super().__init__(daemon=True)
        self.cameras, self.pairs, self.period = cameras, pairs, 1.0 / rate
        self.stop_event = threading.Event()
        self.sent = 0

    def run(self):
        while not self.stop_event.wait(self.period):
            self.cameras.publish(self.pairs[self.sent % len(self.pairs)], time.time_ns())
            self.sent += 1

    def stop(self):
        self.stop_event.set()
        self.join(2.0)


def values(diagnostics):
    return {kv.key: kv.value for kv in diagnostics.status[0].values}


def test_rewarder_failures_publish_invalid_estimates_and_the_node_recovers(ros, start_node, lift_pairs):
    estimates = ros.collect(ProgressEstimate, conv.PROGRESS)
    marker_arrays = ros.collect(MarkerArray, conv.REWARD_MARKERS)
    diagnostics = ros.collect(DiagnosticArray, conv.DIAGNOSTICS)
    rewarder = FailingRewarder(["valid:40", "raise", "sleep:1.5", "garbage", "valid:70"])
    start_node(rewarder, task=TASK, query_rate=5.0, query_timeout=0.5)
    cameras = Cameras(ros)
    cameras.wait_connected()
    bad = numpy_to_image(lift_pairs[0][0], "rgb8")
    bad.step = 10  # shorter than one row: a malformed image
    cameras.shoulder.publish(bad)
    feeder = Feeder(cameras, lift_pairs)
    feeder.start()
    try:
        ros.wait_for(lambda: sum(e.valid and e.query_index >= 5 for _, e in estimates) >= 2, 30,
                     "valid answers after the failures")
    finally:
        feeder.stop()
    got = [(e.query_index, e.valid, e.progress) for _, e in estimates[:6]]
    assert got == [(0, True, 0.0), (1, True, 40.0), (2, False, 40.0), (3, False, 40.0), (4, False, 40.0),
                   (5, True, 70.0)]
    assert all(e.task == TASK and e.rewarder == "failing" for _, e in estimates)
    stamps = [e.header.stamp.sec * 10**9 + e.header.stamp.nanosec for _, e in estimates]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)      # each answer is about a newer frame
    # The rewarder saw the last valid answer as previous progress, never an invalid one.
    assert [q.previous_progress for q in rewarder.queries[:5]] == [0.0, 40.0, 40.0, 40.0, 40.0]
    ros.wait_for(lambda: marker_arrays and len(marker_arrays) >= len(estimates[:6]), 5, "markers per estimate")
    ros.wait_for(lambda: diagnostics and values(diagnostics[-1][1]).get("errors.invalid_answer") == "1", 5,
                 "diagnostics after the failures")
    report = values(diagnostics[-1][1])
    assert report["errors.exception"] == "1" and report["errors.timeout"] == "1"
    assert report["errors.malformed_image"] == "1" and report["late_answers_discarded"] == "1"
    assert int(report["skipped_queries"]) >= 1             # ticks while the slow call still held the worker
    assert int(report["frames_held"]) <= 2 * 64 + 2 * 8    # bounded: max_frames pairs + waiting frames


def test_query_service_scores_frames_without_blocking_the_camera_callbacks(ros, start_node, lift_pairs):
    estimates = ros.collect(ProgressEstimate, conv.PROGRESS)
    rewarder = FailingRewarder(["sleep:1.5", "raise"])
    start_node(rewarder, task=TASK, query_rate=0.1)
    cameras = Cameras(ros)
    cameras.wait_connected()
    client = ros.node.create_client(QueryProgress, conv.QUERY_PROGRESS_SERVICE)
    assert client.wait_for_service(timeout_sec=10)
    frames = lift_pairs[:6]
    request = QueryProgress.Request(task=TASK, previous_progress=25.0,
                                    external_frames=[numpy_to_image(p[0], "rgb8") for p in frames],
                                    wrist_frames=[numpy_to_image(p[1], "rgb8") for p in frames])
    request.external_frames[-1].header.stamp.sec = 77
    future = client.call_async(request)
    ros.wait_for(lambda: rewarder.calls == 1, 10, "the service call to reach the rewarder")
    # While the slow call runs, a new episode and its first frame pair are still handled at once.
    cameras.episode(3, EpisodeInfo.EVENT_STARTED, "Open the drawer")
    time.sleep(0.2)
    cameras.publish(lift_pairs[0], time.time_ns())
    ros.wait_for(lambda: estimates, 5, "the frame-0 estimate during the service call")
    assert not future.done() and estimates[0][1].episode_id == 3 and estimates[0][1].task == "Open the drawer"
    ros.wait_for(future.done, 10, "the service answer")
    response = future.result()
    assert response.success and response.estimate.valid and response.estimate.progress == 99.0
    assert response.estimate.header.stamp.sec == 77 and response.estimate.query_index == 5
    query = rewarder.queries[0]
    for got, want in zip(query.external, (frames[0][0], frames[4][0], frames[5][0])):
        np.testing.assert_array_equal(got, want)
    assert query.previous_progress == 25.0 and query.task == TASK
    failing = ros.call(client, request)
    assert not failing.success and "RuntimeError" in failing.message
    request.wrist_frames = request.wrist_frames[:2]
    malformed = ros.call(client, request)
    assert not malformed.success and "wrist_frames must be empty or as many" in malformed.message
    assert rewarder.calls == 2                              # a malformed request never reaches the rewarder


def test_lockstep_answers_every_nth_frame_with_its_stamp_and_resets_per_episode(ros, start_node, lift_pairs):
    estimates = ros.collect(ProgressEstimate, conv.PROGRESS)
    start_node(RecordingRewarder(), task=TASK, mode="lockstep", reward_every=3)
    cameras = Cameras(ros)
    cameras.wait_connected()
    stamps = [(100 + i) * 10**9 + 5 for i in range(10)]
    for index, stamp in enumerate(stamps):
        cameras.publish(lift_pairs[index], stamp)
        time.sleep(0.05)
    ros.wait_for(lambda: len(estimates) >= 4, 10, "lockstep estimates for frames 0, 3, 6, 9")
    got = [(e.query_index, e.header.stamp.sec * 10**9 + e.header.stamp.nanosec, e.progress, e.frames_used)
           for _, e in estimates]
    assert got == [(0, stamps[0], 0.0, 1), (1, stamps[3], 10.0, 4), (2, stamps[6], 20.0, 7),
                   (3, stamps[9], 30.0, 10)]
    cameras.episode(2, EpisodeInfo.EVENT_STARTED, "Open the drawer")
    time.sleep(0.2)
    for index in range(4):
        cameras.publish(lift_pairs[index], (200 + index) * 10**9)
        time.sleep(0.05)
    ros.wait_for(lambda: len(estimates) >= 6, 10, "the second episode's estimates")
    second = [(e.episode_id, e.task, e.query_index, e.header.stamp.sec) for _, e in estimates[4:]]
    assert second == [(2, "Open the drawer", 0, 200), (2, "Open the drawer", 1, 203)]


def test_lockstep_loses_no_frame_of_a_burst_as_long_as_reward_every(ros, start_node, lift_pairs):
    # The bridge waits for the reward node only every reward_every steps, so up to that many frames can arrive
    # before the node has taken one: all must be counted, or its frame index drifts from the bridge's step count.
    estimates = ros.collect(ProgressEstimate, conv.PROGRESS)
    start_node(RecordingRewarder(), task=TASK, mode="lockstep", reward_every=10)
    cameras = Cameras(ros, image_qos=conv.camera_qos("lockstep", 10))
    cameras.wait_connected()
    stamps = [(500 + index) * 10**9 for index in range(11)]
    for index, stamp in enumerate(stamps):   # back to back, as fast as this process can publish
        cameras.publish(lift_pairs[index], stamp)
    ros.wait_for(lambda: len(estimates) >= 2, 10, "the estimate of frame 10")
    got = [(e.query_index, e.header.stamp.sec, e.frames_used) for _, e in estimates]
    assert got == [(0, 500, 1), (1, 510, 11)]


def test_a_node_started_after_the_episode_began_still_joins_it(ros, start_node, lift_pairs):
    # /episode/info is transient-local: the STARTED event published before the node existed reaches it (on the
    # real robot a learner that missed it would wait forever -- no STEP comes before it acts).
    estimates = ros.collect(ProgressEstimate, conv.PROGRESS)
    cameras = Cameras(ros)
    cameras.episode(7, EpisodeInfo.EVENT_STARTED, "Stack the blocks")
    start_node(RecordingRewarder(), task=TASK, mode="lockstep", reward_every=1)
    cameras.wait_connected()
    time.sleep(0.3)
    cameras.publish(lift_pairs[0], 400 * 10**9)
    ros.wait_for(lambda: estimates, 10, "the first estimate")
    assert (estimates[0][1].episode_id, estimates[0][1].task) == (7, "Stack the blocks")


def test_oracle_gets_privileged_progress_by_frame_stamp(ros, start_node, lift_pairs):
    estimates = ros.collect(ProgressEstimate, conv.PROGRESS)
    start_node(OracleRewarder(), task=TASK, mode="lockstep", reward_every=1)
    cameras = Cameras(ros)
    cameras.wait_connected()
    for index, truth in enumerate([0.0, 12.0, 55.0]):
        stamp = (300 + index) * 10**9
        cameras.publish(lift_pairs[index], stamp)                      # as sim_bridge: frames first, then
        time.sleep(0.05)
        cameras.episode(0, EpisodeInfo.EVENT_STEP, stamp_ns=stamp, privileged=truth)  # the step's true progress
        time.sleep(0.05)
    ros.wait_for(lambda: len(estimates) >= 3, 10, "oracle estimates")
    assert [(e.progress, e.valid, e.privileged, e.rewarder) for _, e in estimates] == [
        (0.0, True, True, "oracle"), (12.0, True, True, "oracle"), (55.0, True, True, "oracle")]
    assert "PRIVILEGED ORACLE" in estimates[1][1].reasoning


def test_unknown_rewarder_stops_the_node_naming_the_parameter(ros):
    with pytest.raises(ConfigError, match="parameter 'rewarder' = 'no_such_backend'"):
        RewardNode(context=ros.context, parameter_overrides=[Parameter("rewarder", value="no_such_backend")])
    with pytest.raises(ConfigError, match="rewarder_options must be a YAML mapping"):
        RewardNode(context=ros.context, parameter_overrides=[Parameter("rewarder", value="oracle"),
                                                             Parameter("rewarder_options", value="[1, 2]")])


# ------------------------------------------------------------------------------------------ the reward_replay graph
GRAPH_VIDEOS = ["robosuite_lift_episode_14_successful_max_reward_100.mp4",
                "robosuite_lift_episode_00_unsuccessful_max_reward_1.mp4"]


def _complete_episode(estimates, answers: int):
    """Estimates of the first episode seen from its frame 0 that has `answers` model answers, else None."""
    episodes = {}
    for _, estimate in estimates:
        episodes.setdefault(estimate.episode_id, []).append(estimate)
    for episode in episodes.values():
        if episode[0].query_index == 0 and len(episode) > answers:
            return episode
    return None


def _launch_tiny_replay(launch_graph, repo_root, video_path, **extra):
    # The node builds (or reuses) the tiny model where the model tests cache it.
    env = {"SOLE_R1_TINY_MODEL": str(repo_root / "build" / "test-cache" / "tiny-qwen3vl")}
    # rate 2 = the videos' own 2 fps: one pass (an episode) lasts 12.5 s, long enough for several tiny-model answers.
    return launch_graph("reward_replay", env=env, side_by_side_path=str(video_path), rewarder="tiny", rate=2.0,
                        query_rate=2.0, width=128, height=128, start_delay=0.0, query_timeout=30.0, **extra)


@pytest.mark.slow
@pytest.mark.parametrize("video", GRAPH_VIDEOS)
def test_reward_replay_graph_scores_official_lift_video_with_the_tiny_model(ros, launch_graph, repo_root,
                                                                           official_lift, video):
    estimates = ros.collect(ProgressEstimate, conv.PROGRESS)
    graph = _launch_tiny_replay(launch_graph, repo_root, official_lift / "videos" / video)
    episode = ros.wait_for(lambda: _complete_episode(estimates, 2), 150, f"an episode with 2 answers ({video})")
    assert graph.process.poll() is None, graph.log()
    assert (episode[0].progress, episode[0].valid, episode[0].frames_used) == (0.0, True, 1)
    assert [e.query_index for e in episode] == list(range(len(episode)))          # rising, one per answer
    assert all(e.task == TASK and e.rewarder == "sole_r1" and not e.privileged for e in episode)
    frames_used = [e.frames_used for e in episode]
    assert frames_used == sorted(frames_used) and frames_used[-1] <= 25
    last_valid = 0.0
    for estimate in episode[1:]:
        assert estimate.raw_text and estimate.latency > 0                          # a real model call
        if estimate.valid:
            last_valid = estimate.progress
        else:                                                                      # carried forward
            assert estimate.progress == last_valid
    assert graph.stop() == 0
    assert "[reward_node]" in graph.log() and "rewarder sole_r1" in graph.log()


@pytest.mark.slow
@pytest.mark.parametrize("video", GRAPH_VIDEOS)
def test_reward_replay_graph_gives_valid_estimates_with_format_constrained_decoding(ros, launch_graph, repo_root,
                                                                                    official_lift, video):
    # constrain_format makes even the random tiny model write `<think>..</think><answer>N%</answer>`.
    estimates = ros.collect(ProgressEstimate, conv.PROGRESS)
    graph = _launch_tiny_replay(launch_graph, repo_root, official_lift / "videos" / video,
                                rewarder_options="{constrain_format: true}")
    episode = ros.wait_for(lambda: _complete_episode(estimates, 2), 150, f"an episode with 2 answers ({video})")
    assert graph.process.poll() is None, graph.log()
    assert all(e.valid for e in episode), [e.raw_text for e in episode]
    assert [e.query_index for e in episode] == list(range(len(episode)))          # rising, one per answer
    for estimate in episode[1:]:                                                   # real, well-formed answers
        assert re.fullmatch(r"<think>.*</think><answer>-?\d{1,3}%</answer>", estimate.raw_text, re.DOTALL)
        assert -100.0 <= estimate.progress <= 100.0 and estimate.latency > 0
    assert graph.stop() == 0
