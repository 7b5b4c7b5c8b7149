"""health_check: the release, fetched through Traefik with the project's Host, must serve
its own marker through the route version just written, not merely answer 200."""

import time

import httpx
from temporalio.exceptions import ApplicationError

from activities.heartbeat import Beat
from activities.routes import CANDIDATE_HEADER, ROUTE_HEADER
from slipway.layout import RELEASE_MARKER
from slipway.models import HealthResult


def wait_until_served(
    port: int,
    host: str,
    release_id: str,
    route_version: str,
    timeout: float,
    beat: Beat,
    candidate: str | None = None,
) -> HealthResult:
    """Poll the release marker until it names `release_id` through `route_version`, or fail
    after `timeout`. With `candidate` (a deployment id) the request asks for the release
    being proven rather than the one serving.

    Idempotent: it only reads.
    """
    url = f"http://127.0.0.1:{port}/{RELEASE_MARKER}"
    headers = {"Host": host}
    if candidate:
        headers[CANDIDATE_HEADER] = candidate
    deadline = time.monotonic() + timeout
    attempts = 0
    last = "no answer yet"
    with httpx.Client(timeout=5.0, headers=headers) as client:
        while True:
            beat.check()
            attempts += 1
            try:
                answer = client.get(url)
                served = answer.text.strip()
                route = answer.headers.get(ROUTE_HEADER)
                if answer.status_code == 200 and served == release_id and route == route_version:
                    return HealthResult(url=f"http://{host}:{port}/", attempts=attempts)
                last = f"HTTP {answer.status_code} from route {route}: {served[:80]!r}"
            except httpx.HTTPError as err:
                last = f"{type(err).__name__}: {err}"
            if time.monotonic() >= deadline:
                raise ApplicationError(
                    f"release {release_id} was not served at http://{host}:{port}/ "
                    f"within {timeout:g}s; last answer: {last}",
                    type="Unhealthy",
                    non_retryable=True,
                )
            time.sleep(0.1)
