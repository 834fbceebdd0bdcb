"""The logic the nodes wrap, without rclpy: safety gate, Franka bridge and twin, reward session, learner loop.

Each node in `sole_r1_ros.nodes` translates messages, parameters and timers into calls on one class here, so the
behaviour is unit-tested with injected clocks instead of whole graphs.
"""
