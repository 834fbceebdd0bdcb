"""ROS 2 node entry modules: one module per executable (each exposes main())."""
