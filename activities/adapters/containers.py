"""An app's container on the Docker Engine: run it with a health check and least privilege,
wait until Docker calls it healthy, read its last output, and remove it again.

Plain functions over a `docker.DockerClient` the caller opens. Each is idempotent because
the container's name derives from the deployment id: it looks for that name first and adopts
what an earlier attempt left, so a retried activity never starts a second copy. All of them
block: call them from a thread.
"""

import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import docker
from docker.errors import APIError, NotFound

from activities.adapters.app_output import last_lines
from activities.adapters.container_spec import ContainerSpec
from activities.adapters.docker import LABEL_DEPLOYMENT, LABEL_PORT
from activities.adapters.images import ANSI
from slipway.errors import UnhealthyError


class ContainerConflictError(Exception):
    """A container has the deployment's name but not its image, deployment or port."""


class ContainerStartError(Exception):
    """The Docker Engine refused to start the container (e.g. its command does not exist)."""


def _find(client: docker.DockerClient, name: str) -> Any:
    try:
        return client.containers.get(name)
    except NotFound:
        return None


def _create(client: docker.DockerClient, spec: ContainerSpec) -> Any:
    """Create the container as the spec says: all capabilities dropped but the spec's, no
    privilege gain through setuid, an init that forwards SIGTERM, and limits."""
    healthcheck = None
    if spec.health_test is not None:
        healthcheck = {
            "test": spec.health_test,
            "interval": int(spec.health_interval * 1e9),
            "timeout": int(spec.health_timeout * 1e9),
            "retries": spec.health_retries,
            "start_period": int(spec.health_start_period * 1e9),
        }
    restart = {"Name": spec.restart}
    env = {key: value.get_secret_value() for key, value in spec.env.items()}
    env["PORT"] = str(spec.port)
    return client.containers.create(
        spec.image,
        name=spec.name,
        labels=spec.all_labels(),
        environment=env,
        network_mode=spec.network_mode,
        restart_policy=restart,
        mem_limit=spec.memory,
        memswap_limit=spec.memory,
        nano_cpus=int(spec.cpus * 1e9),
        pids_limit=spec.pids_limit,
        cap_drop=["ALL"],
        cap_add=spec.cap_add or None,
        security_opt=["no-new-privileges"],
        init=True,
        healthcheck=healthcheck,
    )


def _check_ours(container: Any, spec: ContainerSpec) -> None:
    labels = container.attrs["Config"].get("Labels") or {}
    found = (
        labels.get(LABEL_DEPLOYMENT),
        container.attrs["Config"].get("Image"),
        labels.get(LABEL_PORT),
    )
    wanted = (spec.deployment_id, spec.image, str(spec.port))
    if found != wanted:
        raise ContainerConflictError(
            f"container {spec.name} exists with deployment, image, port {found}, not {wanted}: "
            "remove it, or keep the port this deployment was first given"
        )


def _created_meanwhile(client: docker.DockerClient, name: str) -> Any:
    """The container another attempt is creating: Docker reserves the name before the
    container can be looked up, so wait a moment for it."""
    deadline = time.monotonic() + 10
    while (container := _find(client, name)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"container name {name} is taken but no such container appeared")
        time.sleep(0.1)
    return container


def start_container(client: docker.DockerClient, spec: ContainerSpec) -> str:
    """Run the deployment's container and return its id (it may not be healthy yet).

    Idempotent: the container's name derives from the deployment id, so an existing one is
    this deployment's, left by an earlier attempt; it is adopted (and started if it is not
    running) after checking its deployment, image and port labels, never created twice. Two
    attempts racing to create it meet Docker's name conflict, and the loser adopts.
    """
    container = _find(client, spec.name)
    if container is None:
        try:
            container = _create(client, spec)
        except APIError as err:
            if err.status_code != 409:
                raise
            container = _created_meanwhile(client, spec.name)
    _check_ours(container, spec)
    status = container.status
    if status in ("removing", "dead"):
        raise RuntimeError(f"container {spec.name} is {status}; try again once it is gone")
    try:
        if status == "paused":
            container.unpause()
        elif status in ("created", "exited"):
            container.start()
    except APIError as err:
        raise ContainerStartError(
            f"container {spec.name} could not start: {err.explanation or err}"
        ) from None
    return str(container.id)


def _last_check(health: Mapping[str, Any]) -> str:
    log = health.get("Log") or []
    if not log:
        return "no health check has run yet"
    last = log[-1]
    output = ANSI.sub("", str(last.get("Output") or "")).strip()[:500]
    return f"last health check exited {last.get('ExitCode')}: {output or '(no output)'}"


def wait_healthy(
    client: docker.DockerClient,
    container_id: str,
    timeout: float,
    check: Callable[[], None],
    *,
    poll: float = 0.25,
) -> None:
    """Return once Docker reports the container healthy; raise `UnhealthyError` with the last
    check's output if it turns unhealthy, exits or restarts (a crash while starting is a bad
    release, even if the restart policy would bring it back), or is not healthy after
    `timeout` seconds. `check` is called on every poll, for cancellation.

    Idempotent: it only reads.
    """
    deadline = time.monotonic() + timeout
    try:
        container = client.containers.get(container_id)
    except NotFound:
        raise UnhealthyError(f"container {container_id} does not exist") from None
    restarts = container.attrs.get("RestartCount", 0)
    name = container.name
    while True:
        check()
        try:
            container.reload()
        except NotFound:
            raise UnhealthyError(f"container {name} was removed while starting") from None
        state = container.attrs["State"]
        health = state.get("Health")
        if health is None:
            raise UnhealthyError(
                f"container {name} has no health check: neither the image nor Slipway set one"
            )
        if health.get("Status") == "healthy":
            return
        crashed = container.attrs.get("RestartCount", 0) > restarts
        if crashed or state.get("Status") not in ("running", "paused"):
            oom = " (out of memory)" if state.get("OOMKilled") else ""
            error = f", {state['Error']}" if state.get("Error") else ""
            raise UnhealthyError(
                f"container {name} exited with code {state.get('ExitCode')}{oom}{error} "
                f"while starting (now {state.get('Status')}); {_last_check(health)}"
            )
        if health.get("Status") == "unhealthy":
            raise UnhealthyError(f"container {name} is unhealthy; {_last_check(health)}")
        if time.monotonic() >= deadline:
            raise UnhealthyError(
                f"container {name} was not healthy after {timeout:g}s "
                f"(health: {health.get('Status')}); {_last_check(health)}"
            )
        time.sleep(poll)


def tail_logs(
    client: docker.DockerClient, name: str, lines: int = 50, redact: Iterable[str] = ()
) -> list[str]:
    """The container's last output lines, with every value in `redact` (the deployment's
    secrets) replaced by `***`, for a failure report. An app may print its environment."""
    container = _find(client, name)
    if container is None:
        return []
    return last_lines(container, lines, None, redact)


def remove_container(client: docker.DockerClient, name: str, stop_timeout: float = 10.0) -> bool:
    """Stop the container (SIGTERM, then SIGKILL after `stop_timeout` seconds, so requests in
    flight can finish) and remove it; False if there was none.

    Idempotent: a missing container is the goal reached; a removal already under way is
    waited for.
    """
    container = _find(client, name)
    if container is None:
        return False
    try:
        if container.status in ("running", "restarting", "paused"):
            container.stop(timeout=math.ceil(stop_timeout))
        container.remove(force=True, v=True)
    except NotFound:
        return False
    except APIError as err:
        if err.status_code != 409:
            raise
        deadline = time.monotonic() + 30
        while _find(client, name) is not None:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return True
