"""The loopback port Slipway gives an app on host networking."""

import json
import secrets

import docker

from activities.adapters.docker import LABEL_PORT
from activities.adapters.files import write_atomically
from slipway.layout import Layout
from slipway.loopback_ports import APP_PORTS, bindable

_PORT = "port.json"


def allocate_port(
    taken: set[int], low: int = APP_PORTS.start, high: int = APP_PORTS.stop - 1
) -> int:
    """A loopback port in [low, high] that is neither in `taken` (ports Slipway has given to
    live deployments, which may be stopped right now) nor bound by anyone. The scan starts at
    a random place so that concurrent deployments rarely pick the same port.

    Not idempotent: the caller must store the port with the deployment before starting its
    container, and reuse it on a retry."""
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"invalid port range {low}-{high}")
    span = high - low + 1
    start = secrets.randbelow(span)
    for offset in range(span):
        port = low + (start + offset) % span
        if port not in taken and bindable(port):
            return port
    raise RuntimeError(f"no free loopback port in {low}-{high}: all are taken or bound")


def recorded(layout: Layout, key: str) -> int | None:
    """The port recorded for a deployment's (or a restart's) container, if any."""
    record = layout.work(key) / _PORT
    if record.exists():
        return int(json.loads(record.read_text())["port"])
    return None


def recorded_port(client: docker.DockerClient, layout: Layout, key: str) -> int:
    """The loopback port of a deployment's (or a restart's) container, `key` being its id:
    allocated once, written to its work dir before any container uses it, and read back by
    every retry."""
    found = recorded(layout, key)
    if found is not None:
        return found
    record = layout.work(key) / _PORT
    taken = {
        int(c.labels[LABEL_PORT])
        for c in client.containers.list(all=True, filters={"label": LABEL_PORT})
        if c.labels.get(LABEL_PORT, "").isdigit()
    }
    port = allocate_port(taken)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(record, json.dumps({"port": port}))
    return port
