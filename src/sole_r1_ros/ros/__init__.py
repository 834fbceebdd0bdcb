"""ROS conventions and conversion: topic names and QoS, typed parameters, Image <-> numpy, message builders."""
