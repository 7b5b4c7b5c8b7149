"""Traefik's dynamic configuration written as YAML with every string quoted.

PyYAML writes YAML 1.1, where `0973790466535201` or `12e45` is not a number, so it leaves
such strings bare; Traefik reads both as numbers, and a header value written as them
arrives as `973790466535201` and as a 48-digit integer. A route version (a hex digest) or a
token of that shape then never matched what Slipway wrote, and the route could not be
proven. Quoted, a string is read back as itself by either.
"""

from typing import Any

import yaml


class _QuotingDumper(yaml.SafeDumper):
    """A safe dumper whose strings are all written in double quotes."""


def _quoted(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_QuotingDumper.add_representer(str, _quoted)

_UNFOLDED = 1 << 20
"""A line width no string of a route reaches: PyYAML folds longer ones."""


def dump_dynamic(config: dict[str, Any]) -> str:
    """`config` as YAML Traefik reads back exactly (keys sorted, so equal configurations are
    equal texts), each string on one line however long (a rule as it is written)."""
    return yaml.dump(config, Dumper=_QuotingDumper, sort_keys=True, width=_UNFOLDED)
