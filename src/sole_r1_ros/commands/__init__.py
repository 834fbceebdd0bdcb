"""`sole-r1` subcommands that need ROS: the demo, the e-stop, and graph introspection (`graph`, `echo`)."""
