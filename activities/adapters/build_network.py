"""Where a build's RUN steps connect. The server decides (`SLIPWAY_BUILD_NETWORK`); a
slipway.toml may choose `none`, or a network the server allows besides its own
(`SLIPWAY_BUILD_NETWORKS_ALLOWED`). The host network is a real grant: a RUN step on it reaches
everything on the server's loopback, Temporal and PostgreSQL included."""

import docker

from slipway.errors import BadInputError
from slipway.settings import Settings

AUTO = "auto"
"""Docker's bridge when the Engine has one (the internet, not the host's loopback), else the
host's network: an Engine started with `--bridge=none` has no other that reaches anything."""


def build_network(client: docker.DockerClient, settings: Settings, chosen: str | None) -> str:
    """The network for this build's RUN steps: the server's, or `chosen` if it may be;
    `BadInputError` names what is allowed otherwise."""
    server = settings.build_network
    if server == AUTO:
        bridges = [n for n in client.networks.list(names=["bridge"]) if n.name == "bridge"]
        server = "bridge" if bridges else "host"
    if chosen is None or chosen in (settings.build_network, server):
        return server
    allowed = sorted({"none", server, *settings.build_networks_allowed})
    if chosen not in allowed:
        raise BadInputError(
            f'slipway.toml: [build] network = "{chosen}" is not allowed on this server '
            f"(allowed: {', '.join(allowed)}; SLIPWAY_BUILD_NETWORKS_ALLOWED adds more)"
        )
    return chosen
