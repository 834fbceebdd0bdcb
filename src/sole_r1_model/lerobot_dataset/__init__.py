"""LeRobot datasets without the `lerobot` package: the on-disk format (v2.x and v3.0), per-frame columns added in
place, the camera frames an episode's key frames need, and `sole-r1 annotate` (rewarder progress per frame)."""
