"""The pytest plugins every test module shares: clean environment, data directories, the emulator, clock, processes."""
