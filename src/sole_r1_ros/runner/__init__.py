"""The embedded graph runner: start a graph YAML as one process per node, without launch_ros."""
