"""Node conventions: typed parameters with clear errors, and QoS profiles that behave as documented."""
import dataclasses
import subprocess
import sys

import pytest
import rclpy
from rclpy.parameter import Parameter
from std_msgs.msg import Bool

from sole_r1_ros.ros import conventions as conv
from sole_r1_ros.ros.conventions import ConfigError, param


@dataclasses.dataclass
class ExampleConfig:
    robot_ip: str = param(description="address of the robot")          # required
    rate: float = param(10.0, "control rate, Hz", low=1.0, high=100.0)
    mode: str = param("async", "timing mode", choices=("async", "lockstep"))
    cameras: list = param(["wrist", "shoulder"], "camera names")
    verbose: bool = param(False, "log more")

    def __post_init__(self):
        if self.mode == "lockstep" and self.rate > 50:
            raise ValueError("lockstep needs rate <= 50")


def _declare(ros, **overrides):
    node = rclpy.create_node("conv_test", context=ros.context,
                             parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    try:
        return conv.declare_config(node, ExampleConfig), node
    finally:
        node.destroy_node()


def test_defaults_overrides_and_int_to_float(ros):
    config, _ = _declare(ros, robot_ip="172.16.0.2", rate=20)  # YAML ints for float params are accepted
    assert config == ExampleConfig("172.16.0.2", 20.0, "async", ["wrist", "shoulder"], False)
    assert isinstance(config.rate, float)


@pytest.mark.parametrize("overrides, message", [
    ({}, "required parameter 'robot_ip' is not set"),
    ({"robot_ip": "x", "rate": 500.0}, "parameter 'rate' = 500.0 is above its maximum 100.0"),
    ({"robot_ip": "x", "mode": "sync"}, "parameter 'mode' = 'sync' is not one of"),
    ({"robot_ip": "x", "verbose": "yes"}, "parameter 'verbose' = 'yes' is not a valid bool"),
    ({"robot_ip": "x", "rate": 60.0, "mode": "lockstep"}, "lockstep needs rate <= 50"),
])
def test_bad_parameters_raise_errors_naming_them(ros, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        _declare(ros, **overrides)


def test_descriptors_carry_description_and_range(ros):
    node = rclpy.create_node("conv_desc", context=ros.context, parameter_overrides=[Parameter("robot_ip", value="x")])
    conv.declare_config(node, ExampleConfig)
    descriptor = node.describe_parameter("rate")
    assert descriptor.description == "control rate, Hz"
    assert descriptor.floating_point_range[0].from_value == 1.0 and descriptor.floating_point_range[0].to_value == 100.0
    assert "lockstep" in node.describe_parameter("mode").additional_constraints
    node.destroy_node()


def test_latched_qos_reaches_late_subscribers(ros):
    publisher = ros.node.create_publisher(Bool, "/test/estop", conv.LATCHED_QOS)
    publisher.publish(Bool(data=True))
    late = ros.collect(Bool, "/test/estop", conv.LATCHED_QOS)  # subscribes after the only publish
    ros.wait_for(lambda: late, 5, "the latched value")
    assert late[0][1].data is True


def test_best_effort_subscriber_receives_from_image_publisher_qos(ros):
    publisher = ros.node.create_publisher(Bool, "/test/sensor", conv.IMAGE_PUBLISHER_QOS)
    received = ros.collect(Bool, "/test/sensor", conv.SENSOR_QOS)
    ros.wait_for(lambda: publisher.publish(Bool(data=True)) or received, 5, "a sample over mixed QoS")


def test_a_node_given_a_misspelt_parameter_exits_2_naming_it_and_the_valid_names():
    process = subprocess.run([sys.executable, "-m", "sole_r1_ros.nodes.safety_gate", "--ros-args",
                              "-p", "max_translaton_m:=0.1"], capture_output=True, text=True, timeout=30)
    assert process.returncode == 2, process.stderr
    assert "unknown parameter(s) for safety_gate: max_translaton_m" in process.stderr
    assert "valid names:" in process.stderr and "max_translation_m" in process.stderr.split("valid names:")[1]
