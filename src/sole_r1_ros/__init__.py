"""sole_r1_ros package."""
