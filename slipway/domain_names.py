"""The rules a custom domain's name must follow. A name is kept in its ASCII form (IDNA,
UTS #46: lowercased, Unicode labels as punycode), so that one domain has one spelling in the
database, in Traefik's rules and for the ACME CA."""

import ipaddress
import re

import idna

from slipway.names import InvalidNameError

MAX_NAME = 253
"""The longest domain name DNS allows, dots included."""

_A = "[a-z0-9]"
_L = "[a-z0-9-]"
_SHORT = f"{_A}(?:{_L}?{_A})?"
# Four characters or more, the third and fourth not both hyphens (those are reserved).
_LONG = f"{_A}{_L}(?:{_A}{_A}|-{_A})(?:{_L}{{0,58}}{_A})?|{_A}{_L}{_A}-{_L}{{0,58}}{_A}"
_A_LABEL = f"xn--{_A}(?:{_L}{{0,57}}{_A})?"
_LABEL = f"(?:{_SHORT}|{_LONG}|{_A_LABEL})"
DOMAIN_PATTERN = rf"^(?:{_LABEL}\.)+(?:[a-z]{{2,63}}|{_A_LABEL})$"
"""A domain name in its ASCII form: two labels or more, each 1-63 lowercase letters, digits
and hyphens (no hyphen first or last, none in both the third and fourth place but for an
`xn--` label), under a top-level domain of letters (or an `xn--` label): never an IP."""


class DomainError(InvalidNameError):
    """A name that cannot be a custom domain; the message says how to fix it."""


def _ascii_problem(name: str) -> str | None:
    """What is wrong with a name given in ASCII, in words, or None."""
    labels = name.split(".")
    if len(labels) < 2:
        return "needs a dot: a full name like example.com"
    for label in labels:
        if not label:
            return "has an empty label (two dots in a row, or a dot first)"
        if len(label) > 63:
            return f"has a label of {len(label)} characters; at most 63"
        if not re.fullmatch("[a-z0-9-]+", label):
            return "may hold only letters, digits, hyphens and dots"
        if label.startswith("-") or label.endswith("-"):
            return f"has a label ({label}) that begins or ends with a hyphen"
        if label[2:4] == "--" and not label.startswith("xn--"):
            return f"has a label ({label}) with hyphens in its 3rd and 4th place, kept for xn--"
    if not re.fullmatch(f"[a-z]{{2,63}}|{_A_LABEL}", labels[-1]):
        return "needs a top-level domain of letters, e.g. example.com"
    return None


def domain_name(name: str) -> str:
    """The ASCII form of a custom domain, or a `DomainError` saying what is wrong with it. A
    name with Unicode labels is encoded (IDNA, UTS #46); one in ASCII is lowercased and held
    to DNS's letters-digits-hyphens rules (an `xn--` label is taken as it is written). A final
    dot is dropped."""
    raw = name.strip().removesuffix(".")
    if not raw:
        raise DomainError("a domain name is required, e.g. example.com")
    if "*" in raw:
        raise DomainError(
            f"{name!r}: wildcards are not supported; add each name (shop.example.com, ...)"
        )
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        pass
    else:
        raise DomainError(f"{name!r} is an IP address: give a domain name, e.g. example.com")
    try:
        ascii_name = raw.lower() if raw.isascii() else idna.encode(raw, uts46=True).decode()
    except idna.IDNAError as err:
        raise DomainError(f"{name!r} is not a valid domain name: {err}") from None
    if len(ascii_name) > MAX_NAME:
        raise DomainError(
            f"{name!r} is {len(ascii_name)} characters long as ASCII; at most {MAX_NAME}"
        )
    problem = _ascii_problem(ascii_name)
    if problem is not None or not re.fullmatch(DOMAIN_PATTERN, ascii_name):
        raise DomainError(f"{name!r} {problem or 'is not a valid domain name'}")
    return ascii_name


def www_of(name: str) -> str:
    """The `www.` name that redirects to `name`."""
    return f"www.{name}"


def unicode_name(name: str) -> str:
    """The name as people read it (its Unicode labels decoded)."""
    try:
        return idna.decode(name)
    except idna.IDNAError:
        return name
