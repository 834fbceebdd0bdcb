"""launch/franka_bringup.launch.py: franka_bringup with sole_r1's controllers file, the chosen controller active."""
import importlib.util

import pytest
import yaml

from sole_r1_ros.ros.franka_interfaces import TARGET_CONTROLLERS

from . import fake_launch


@pytest.fixture(scope="module", autouse=True)
def fake_launch_modules():
    with fake_launch.installed():
        yield


def bringup(repo_root, **overrides):
    spec = importlib.util.spec_from_file_location("franka_bringup_launch", repo_root / "launch" /
                                                  "franka_bringup.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    declared, actions = fake_launch.run_launch_file(module, {"robot_ip": "172.16.0.2", **overrides})
    include = next(a for a in actions if type(a).__name__ == "IncludeLaunchDescription")
    spawner = next(a.kwargs for a in actions if type(a).__name__ == "Node")
    return declared, dict(include.kwargs["launch_arguments"]), include.args[0].args[0], spawner


@pytest.mark.parametrize("choice", sorted(TARGET_CONTROLLERS))
def test_the_chosen_controller_is_spawned_active_with_franka_bringup(repo_root, choice):
    declared, arguments, source, spawner = bringup(repo_root, target_controller=choice, namespace="left")
    assert "default_value" not in declared["robot_ip"].kwargs       # required, like the graph's robot_ip
    assert [p.args[0] for p in source.args[0] if hasattr(p, "args")] == ["franka_bringup"]
    assert source.args[0][1:] == ["launch", "franka.launch.py"]
    assert arguments["load_gripper"] == "true" and arguments["load_franka_robot_state_broadcaster"] == "true"
    assert arguments["namespace"] == "left" and arguments["robot_ip"] == "172.16.0.2"
    assert spawner["package"] == "controller_manager" and spawner["executable"] == "spawner"
    assert spawner["arguments"][0] == TARGET_CONTROLLERS[choice].controller_name
    assert "--inactive" not in spawner["arguments"] and spawner["namespace"] == "left"
    controllers = yaml.safe_load(open(arguments["controllers_yaml"]))["/**"]
    types = {name: spec["type"] for name, spec in controllers["controller_manager"]["ros__parameters"].items()
             if isinstance(spec, dict) and "type" in spec}
    assert types["franka_robot_state_broadcaster"] == "franka_robot_state_broadcaster/FrankaRobotStateBroadcaster"
    assert TARGET_CONTROLLERS[choice].controller_name in types


def test_the_controllers_file_names_the_upstream_plugin_types(repo_root):
    controllers = yaml.safe_load((repo_root / "config" / "franka" / "controllers.yaml").read_text())["/**"]
    types = {name: spec["type"] for name, spec in controllers["controller_manager"]["ros__parameters"].items()
             if isinstance(spec, dict)}
    # crisp_controllers v1.0.0 exports crisp_controllers/CartesianController (crisp_controllers.xml).
    assert types["cartesian_impedance_controller"] == "crisp_controllers/CartesianController"
    assert types["cartesian_impedance_example_controller"] == \
        "franka_example_controllers/CartesianImpedanceExampleController"
    crisp = controllers["cartesian_impedance_controller"]["ros__parameters"]
    assert crisp["joints"] == [f"fr3_joint{i}" for i in range(1, 8)] and crisp["end_effector_frame"] == "fr3_hand_tcp"


def test_an_unknown_controller_is_refused(repo_root):
    with pytest.raises(ValueError, match="target_controller"):
        bringup(repo_root, target_controller="serl")
