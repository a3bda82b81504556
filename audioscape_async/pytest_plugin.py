"""The pytest plugin for testing apps against the AudioScape emulator (fixtures land with it)."""
