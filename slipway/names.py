"""Validation of the names that reach Traefik, Docker and the file system."""

import re
import uuid

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class InvalidNameError(ValueError):
    """A name that cannot be used safely; the message says how to fix it."""


def validate_project_name(name: str) -> str:
    """Return the name if it is a DNS label: it becomes a host name, a directory and a tag."""
    if not _DNS_LABEL.fullmatch(name):
        raise InvalidNameError(
            f"invalid project name {name!r}: use 1-63 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit (it becomes <name>.<base domain>)"
        )
    return name


def validate_server_name(name: str) -> str:
    """Return the name if it is a DNS label: it names a server's task queue and its files."""
    if not _DNS_LABEL.fullmatch(name):
        raise InvalidNameError(
            f"invalid server name {name!r}: use 1-63 lowercase letters, digits and hyphens, "
            "starting and ending with a letter or digit"
        )
    return name


def validate_deployment_id(value: str) -> str:
    """Return the canonical form of a deployment id, which must be a UUID."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidNameError(f"invalid deployment id {value!r}: expected a UUID") from None


def validate_upload_id(value: str) -> str:
    """Return an upload id if it is a plain hex digest: it names a file in the upload store."""
    if not re.fullmatch(r"[0-9a-f]{16,64}", value):
        raise InvalidNameError(f"invalid upload id {value!r}: expected 16-64 lowercase hex digits")
    return value


SITE_SEPARATOR = "--"
"""Between a preview's name and its project's in the name it is served and kept under."""


def validate_preview_name(name: str, project: str) -> str:
    """Return a preview's name if `<name>--<project>` is a DNS label: it becomes a host name
    (`<name>--<project>.<base domain>`), a directory and a tag, and it must not be read as
    another project's preview (so no `--` in it)."""
    longest = 63 - len(SITE_SEPARATOR) - len(project)
    if (
        not _DNS_LABEL.fullmatch(name)
        or SITE_SEPARATOR in name
        or len(name) > longest
        or longest < 1
    ):
        raise InvalidNameError(
            f"invalid preview name {name!r}: use lowercase letters, digits and single hyphens, "
            f"starting and ending with a letter or digit, at most {max(longest, 0)} characters "
            f"(it becomes <name>{SITE_SEPARATOR}{project}.<base domain>, a DNS label)"
        )
    return name


def preview_site(name: str, project: str) -> str:
    """The name a preview of `project` is routed, kept and tracked under."""
    return validate_project_name(f"{validate_preview_name(name, project)}{SITE_SEPARATOR}{project}")


def preview_name_of(branch: str, project: str) -> str | None:
    """A preview name made from a git branch (`feature/Log-in` → `feature-log-in`), cut to
    fit beside the project's name; None when nothing of it is usable."""
    longest = 63 - len(SITE_SEPARATOR) - len(project)
    name = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")[: max(longest, 0)].strip("-")
    return name or None
