"""sole_r1_model package."""
