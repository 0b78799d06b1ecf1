"""Running the daemon: the server lifecycle (startup, main loop, signals, shutdown), accepting
connections without spinning when descriptors run out, the ``[server]`` resource limits, the
descriptor limit and memory watch, and the event loop's stall watch."""
