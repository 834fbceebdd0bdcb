"""Typed settings shared by every layer, and where the project's config/ folder is (no rclpy, no torch).

Each setting is one dataclass field made with `param()` (default, description, range or choices), defined once.
ROS parameters (`sole_r1_ros.ros.conventions.declare_config`) and command-line flags (`add_arguments` /
`from_arguments`) are both derived from those fields, so a node and a CLI that share a dataclass share its names.
"""
from sole_r1_config.paths import config_dir, models_dir, resolve_config_path, share_dir
from sole_r1_config.settings import (ConfigError, add_arguments, check_ranges, from_arguments, from_mapping,
                                     parse_key_values, param)

__all__ = ["ConfigError", "add_arguments", "check_ranges", "config_dir", "from_arguments", "from_mapping", "models_dir",
           "param",
           "parse_key_values", "resolve_config_path", "share_dir"]
