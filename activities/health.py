"""health_check: the site, fetched through Traefik with the project's Host, must serve this
very release (its marker), not merely answer 200."""

import time

import httpx
from temporalio.exceptions import ApplicationError

from activities.heartbeat import Beat
from activities.routes import ROUTE_HEADER
from slipway.layout import RELEASE_MARKER
from slipway.models import HealthResult


def wait_until_served(
    port: int, host: str, deployment_id: str, route_version: str, timeout: float, beat: Beat
) -> HealthResult:
    """Poll the release marker until it names `deployment_id`, through the route version
    `route_version`, or fail after `timeout`.

    Idempotent: it only reads.
    """
    url = f"http://127.0.0.1:{port}/{RELEASE_MARKER}"
    deadline = time.monotonic() + timeout
    attempts = 0
    last = "no answer yet"
    with httpx.Client(timeout=5.0, headers={"Host": host}) as client:
        while True:
            beat.check()
            attempts += 1
            try:
                answer = client.get(url)
                served = answer.text.strip()
                route = answer.headers.get(ROUTE_HEADER)
                if answer.status_code == 200 and served == deployment_id and route == route_version:
                    return HealthResult(url=f"http://{host}:{port}/", attempts=attempts)
                last = f"HTTP {answer.status_code} from route {route}: {served[:80]!r}"
            except httpx.HTTPError as err:
                last = f"{type(err).__name__}: {err}"
            if time.monotonic() >= deadline:
                raise ApplicationError(
                    f"release {deployment_id} was not served at http://{host}:{port}/ "
                    f"within {timeout:g}s; last answer: {last}",
                    type="Unhealthy",
                    non_retryable=True,
                )
            time.sleep(0.25)
