"""sole_r1_sim package."""
