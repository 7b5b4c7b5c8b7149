"""The client side of Slipway: the Python API and the `slipway` command line."""
