"""`python -m starter.cli`: the `slipway` command, for a child process of the stack that
must run with this interpreter."""

from starter.cli import main

main()
