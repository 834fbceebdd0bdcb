"""Launch files are real launch_ros files that start exactly what `sole-r1 launch` starts from the same YAML."""
import importlib.util

import pytest

from sole_r1_ros.runner.graph import graph_path, load_arguments, resolve_graph

from . import fake_launch

# launch file -> (graph the runner would use, launch arguments a user passes)
CASES = {
    "video_replay.launch.py": ("video_replay", {"rate": "7.5", "monitor": "false"}),
    "reward_replay.launch.py": ("reward_replay", {"rewarder": "tiny", "query_rate": "0.5", "mode": "lockstep"}),
    "sim.launch.py": ("sim_metaworld", {"suite": "metaworld", "task": "reach-v3"}),
    "real_franka.launch.py": ("real_franka", {"robot_ip": "172.16.0.2", "use_fake_hardware": "true",
                                              "namespace": "left"}),
}
# Launch files that start franka_ros2 rather than a graph (tested in test_franka_bringup_launch.py).
BRINGUP = {"franka_bringup.launch.py"}


@pytest.fixture(scope="module", autouse=True)
def fake_launch_modules():
    with fake_launch.installed():
        yield


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_launch_file_is_covered(repo_root):
    assert sorted(p.name for p in (repo_root / "launch").glob("*.launch.py")) == sorted([*CASES, *BRINGUP])


@pytest.mark.parametrize("launch_file", sorted(CASES))
def test_launch_file_starts_the_same_nodes_as_the_runner(repo_root, launch_file):
    graph, overrides = CASES[launch_file]
    declared, actions = fake_launch.run_launch_file(_load(repo_root / "launch" / launch_file), overrides)
    runner_args = {k: v for k, v in overrides.items() if k in load_arguments(graph_path(graph))}
    expected = resolve_graph(graph, runner_args)
    assert set(load_arguments(graph_path(graph))) <= set(declared)
    nodes = [a.kwargs for a in actions if type(a).__name__ == "Node"]
    assert [n["name"] for n in nodes] == [n.name for n in expected.nodes]
    for got, want in zip(nodes, expected.nodes):
        assert got["package"] == "sole_r1" and got["executable"] == want.executable
        assert got["parameters"] == [*want.params_files, want.parameters]
        assert dict(got["remappings"]) == want.remappings
        assert got["namespace"] == (want.namespace or None)
    env = {a.args[0]: a.args[1] for a in actions if type(a).__name__ == "SetEnvironmentVariable"}
    assert env == expected.environment


def test_sim_launch_with_no_arguments_runs_meta_world_with_its_own_defaults(repo_root):
    declared, actions = fake_launch.run_launch_file(_load(repo_root / "launch" / "sim.launch.py"), {})
    names = [e.name for e in fake_launch.declarations(_load(repo_root / "launch" / "sim.launch.py"))]
    assert names.count("suite") == 1
    bridge = next(a.kwargs for a in actions if type(a).__name__ == "Node" and a.kwargs["name"] == "sim_bridge")
    assert bridge["parameters"][-1]["suite"] == "metaworld" and bridge["parameters"][-1]["task"] == "reach-v3"
    _, libero = fake_launch.run_launch_file(_load(repo_root / "launch" / "sim.launch.py"), {"suite": "libero"})
    libero_bridge = next(a.kwargs for a in libero if type(a).__name__ == "Node" and a.kwargs["name"] == "sim_bridge")
    assert libero_bridge["parameters"][-1]["task"] == resolve_graph("sim_libero").arguments["task"]
    assert "prefix" in libero_bridge and libero_bridge["prefix"].endswith("/bin/python")


def test_node_executables_are_installed_by_cmake(repo_root):
    # CMakeLists.txt installs one lib/sole_r1/<name> script per module in nodes/: every graph node needs one.
    cmake = (repo_root / "CMakeLists.txt").read_text()
    assert "src/sole_r1_ros/nodes/*.py" in cmake and "DESTINATION lib/${PROJECT_NAME}" in cmake
    assert "install(DIRECTORY launch config models DESTINATION share/${PROJECT_NAME})" in cmake
    modules = {p.stem for p in (repo_root / "src" / "sole_r1_ros" / "nodes").glob("*.py")}
    for graph, _ in CASES.values():
        required = {n: "x" for n, a in load_arguments(graph_path(graph)).items() if a.required}
        for node in resolve_graph(graph, required).nodes:
            assert node.executable in modules


@pytest.mark.parametrize("record", ["true", "false"])
def test_optional_nodes_follow_their_argument_in_launch_files_too(repo_root, record):
    # `if: $(arg record)` is resolved with the launch arguments inside the OpaqueFunction: no launch condition needed.
    module = _load(repo_root / "launch" / "real_franka.launch.py")
    _, actions = fake_launch.run_launch_file(module, {"robot_ip": "172.16.0.2", "record": record})
    names = [a.kwargs["name"] for a in actions if type(a).__name__ == "Node"]
    assert ("recorder" in names) == (record == "true") and "foxglove_view" not in names
