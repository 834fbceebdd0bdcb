"""The embedded runner: graph resolution, one process per node, rates, clean shutdown, failing required nodes."""
import signal
import time

import numpy as np
import psutil
import pytest
from sensor_msgs.msg import CameraInfo, Image

from sole_r1.msg import EpisodeInfo
from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.images import image_to_numpy
from sole_r1_ros.runner.graph import GraphError, params_file_content, resolve_graph


def _write(tmp_path, text):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    return path


def test_arguments_are_substituted_with_yaml_types(tmp_path):
    path = _write(tmp_path, """
arguments:
  rate: {default: 10.0}
  name: {default: cam}
  enabled: {default: false}
nodes:
  - {name: a, executable: video_source, parameters: {rate: $(arg rate), label: "x-$(arg name)", flag: $(arg enabled)}}
  - {name: b, executable: stream_monitor, if: $(arg enabled)}
""")
    graph = resolve_graph(path, {"rate": "30", "name": "wrist"})
    assert [n.name for n in graph.nodes] == ["a"]  # b is conditional on enabled=false
    assert graph.nodes[0].parameters == {"rate": 30, "label": "x-wrist", "flag": False}
    assert params_file_content(graph.nodes[0]) == {"a": {"ros__parameters": {"rate": 30, "label": "x-wrist", "flag": False}}}
    assert [n.name for n in resolve_graph(path, {"enabled": "true"}).nodes] == ["a", "b"]


def test_task_sentences_with_colons_stay_strings(tmp_path):
    path = _write(tmp_path, "arguments: {task: {default: ''}}\nnodes: [{executable: x, parameters: {task: $(arg task)}}]\n")
    assert resolve_graph(path, {"task": "Lift: the red cube"}).nodes[0].parameters["task"] == "Lift: the red cube"


@pytest.mark.parametrize("text, overrides, message", [
    ("arguments: {a: {default: 1}}\nnodes: []\n", {"b": "2"}, "unknown argument"),
    ("arguments: {a: {description: needed}}\nnodes: []\n", {}, "argument 'a' is required"),
    ("nodes: [{executable: x, paramters: {}}]\n", {}, "unknown key"),
    ("nodes: [{executable: x, parameters: {p: $(arg nope)}}]\n", {}, "not declared"),
    ("nodes: [{executable: x}, {executable: x}]\n", {}, "duplicate node name"),
    ("nodez: []\n", {}, "unknown top-level"),
])
def test_malformed_graphs_give_clear_errors(tmp_path, text, overrides, message):
    with pytest.raises(GraphError, match=message):
        resolve_graph(_write(tmp_path, text), overrides)


def test_every_shipped_graph_resolves_to_existing_node_modules(repo_root):
    import importlib.util

    from sole_r1_ros.runner.graph import load_arguments
    for path in sorted((repo_root / "config" / "graphs").glob("*.yaml")):
        required = {name: "x" for name, arg in load_arguments(path).items() if arg.required}
        graph = resolve_graph(path, required)
        for node in graph.nodes:
            assert importlib.util.find_spec(node.module), f"{path.name}: no module {node.module}"


def test_launch_streams_both_cameras_at_rate_and_stops_cleanly_on_sigint(ros, launch_graph):
    shoulder = ros.collect(Image, conv.SHOULDER_IMAGE, conv.SENSOR_QOS)
    wrist = ros.collect(Image, conv.WRIST_IMAGE, conv.SENSOR_QOS)
    infos = ros.collect(CameraInfo, conv.SHOULDER_INFO)
    episodes = ros.collect(EpisodeInfo, conv.EPISODE_INFO)
    graph = launch_graph("video_replay", rate=10.0, monitor="false")
    ros.wait_for(lambda: len(shoulder) >= 5 and len(wrist) >= 5, 30, "camera frames from the launched graph")
    nodes = graph.descendants()
    assert nodes, "the runner should have node processes"
    start_s, start_w = len(shoulder), len(wrist)
    t0 = time.monotonic()
    time.sleep(4.0)
    elapsed = time.monotonic() - t0
    for name, stream, start in (("shoulder", shoulder, start_s), ("wrist", wrist, start_w)):
        rate = (len(stream) - start) / elapsed
        assert 8.0 <= rate <= 12.0, f"{name} rate {rate:.1f} Hz, configured 10 Hz"
    frame = image_to_numpy(shoulder[-1][1], "rgb8")
    assert frame.shape == (256, 256, 3) and frame.std() > 5  # a real picture, the sample's left half
    assert shoulder[-1][1].header.stamp == wrist[-1][1].header.stamp or len(wrist) != len(shoulder)
    assert infos and infos[-1][1].width == 256
    assert any(e.event == EpisodeInfo.EVENT_STARTED and e.task for _, e in episodes)

    assert graph.stop(signal.SIGINT) == 0
    gone, alive = psutil.wait_procs(nodes, timeout=5)
    assert not alive, f"orphan node processes after SIGINT: {[p.pid for p in alive]}"
    assert "stop requested" in graph.log()


def test_a_namespace_moves_the_graphs_topics_under_it(ros, launch_graph):
    plain = ros.collect(Image, conv.WRIST_IMAGE, conv.SENSOR_QOS)
    namespaced = ros.collect(Image, "/left" + conv.WRIST_IMAGE, conv.SENSOR_QOS)
    graph = launch_graph("video_replay", rate=10.0, monitor="false", namespace="left")
    ros.wait_for(lambda: len(namespaced) >= 3, 30, "frames on /left/cameras/wrist/image_raw")
    assert not plain, "frames of the namespaced graph leaked to the global topic"
    assert "/left/video_source" in {f"{ns.rstrip('/')}/{name}" for name, ns in ros.node.get_node_names_and_namespaces()}
    assert graph.stop(signal.SIGINT) == 0


def test_required_node_failure_stops_graph_with_nonzero_exit(launch_graph, tmp_path):
    graph = launch_graph("video_replay", side_by_side_path=str(tmp_path / "missing.mp4"))
    code = graph.process.wait(60)
    log = graph.log()
    assert code == 1
    assert "parameter 'side_by_side_path'" in log and "missing.mp4" in log
    assert "required node 'video_source' exited with code 2" in log


def test_out_of_range_parameter_stops_node_naming_it(launch_graph):
    graph = launch_graph("video_replay", rate=-3.0, monitor="false")
    assert graph.process.wait(60) == 1
    assert "parameter 'rate' = -3.0 is below its minimum 0.1" in graph.log()


def test_shutdown_on_exit_node_ends_the_graph(launch_graph):
    graph = launch_graph("video_replay", seconds=2.0, rate=5.0)
    assert graph.process.wait(60) == 0
    log = graph.log()
    assert "[stream_monitor]" in log and "shoulder: " in log and " Hz, 256x256" in log
    assert "stopping the graph (shutdown_on_exit)" in log
