"""Slipway's benchmarks: every figure is a ratio against a floor measured in the same run on
the same machine, because absolute times vary between runs. Entry point: `bench.run`."""
