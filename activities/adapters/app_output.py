"""What an app's serving container prints, read from the Docker Engine: the last lines, the
lines since a moment, or the lines as they come, each with the deployment's secrets masked
(an app may print its environment)."""

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from activities.adapters.images import clean_line


def _redacted(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def last_lines(
    container: Any, tail: int | None, since: datetime | None, secrets: Iterable[str]
) -> list[str]:
    """The container's output: its last `tail` lines, or those since `since`, or both."""
    text = container.logs(
        stdout=True, stderr=True, tail=tail if tail is not None else "all", since=since
    ).decode("utf-8", "replace")
    return [clean_line(line) for line in _redacted(text, secrets).splitlines()]


def new_lines(container: Any, secrets: Iterable[str]) -> Iterator[str]:
    """The container's lines from now on, as it prints them, until it stops; blocking:
    iterate on a thread."""
    masked = list(secrets)
    pending = ""
    for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=True, tail=0):
        *complete, pending = (pending + chunk.decode("utf-8", "replace")).split("\n")
        for line in complete:
            yield clean_line(_redacted(line, masked))
    if pending:
        yield clean_line(_redacted(pending, masked))
