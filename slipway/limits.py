"""How much an upload may unpack to, the free space a server keeps and how large a project's
environment may be: each limit has a setting, and a refusal names it, so a person knows
what was too much and what to change."""

from collections.abc import Mapping
from dataclasses import dataclass

MIB = 1024 * 1024
GIB = 1024 * MIB


def size(value: int) -> str:
    """A byte count as a person reads it."""
    if value >= GIB:
        return f"{value / GIB:.1f} GiB"
    if value >= MIB:
        return f"{value / MIB:.1f} MiB"
    return f"{value} bytes"


class LimitError(ValueError):
    """An upload went past a limit; the message names the limit and its setting."""


@dataclass(frozen=True)
class UnpackLimits:
    """What one upload may become on disk. Counted while writing, never from headers."""

    max_bytes: int = GIB
    max_files: int = 100_000
    max_file_bytes: int = 512 * MIB
    max_path_length: int = 1024
    max_depth: int = 32
    max_ratio: int = 200
    ratio_floor: int = 64 * MIB
    """The ratio applies once this much is written: a small archive of text may compress
    far better than the ratio, and is harmless."""
    min_free_bytes: int = 512 * MIB

    def total(self, written: int) -> None:
        """Refuse once the upload has written more than its total."""
        if written > self.max_bytes:
            raise LimitError(
                f"it unpacks to more than {size(self.max_bytes)} (SLIPWAY_UNPACK_MAX_BYTES)"
            )

    def ratio(self, written: int, compressed: int) -> None:
        """Refuse a bomb: far more written than the archive holds."""
        if written > self.ratio_floor and written > self.max_ratio * max(compressed, 1):
            raise LimitError(
                f"it unpacks to more than {self.max_ratio} times its compressed size of "
                f"{size(compressed)} (SLIPWAY_UNPACK_MAX_RATIO)"
            )

    def file(self, name: str, written: int) -> None:
        """Refuse one file larger than a file may be."""
        if written > self.max_file_bytes:
            raise LimitError(
                f"{name!r} is larger than {size(self.max_file_bytes)} "
                "(SLIPWAY_UNPACK_MAX_FILE_BYTES)"
            )

    def count(self, entries: int) -> None:
        """Refuse an upload with more entries than allowed."""
        if entries > self.max_files:
            raise LimitError(
                f"it holds more than {self.max_files} files, directories and links "
                "(SLIPWAY_UNPACK_MAX_FILES)"
            )

    def path(self, name: str) -> None:
        """Refuse a path too long or too deep to be a site's or an app's."""
        if len(name.encode()) > self.max_path_length:
            raise LimitError(
                f"the path {name[:60]!r}... is longer than {self.max_path_length} bytes "
                "(SLIPWAY_UNPACK_MAX_PATH_LENGTH)"
            )
        if name.count("/") + 1 > self.max_depth:
            raise LimitError(
                f"the path {name[:60]!r}... is more than {self.max_depth} levels deep "
                "(SLIPWAY_UNPACK_MAX_DEPTH)"
            )

    def free_space(self, needed: int, free: int, what: str) -> None:
        """Refuse to write `needed` bytes when that would leave less than the reserve."""
        if free - needed < self.min_free_bytes:
            raise LimitError(
                f"{what} needs {size(needed)} and {size(free)} is free: that would leave less "
                f"than the {size(self.min_free_bytes)} kept free (SLIPWAY_MIN_FREE_BYTES); "
                "free some space, then resume the deployment"
            )


@dataclass(frozen=True)
class EnvLimits:
    """How many variables a project's environment may hold and how large it may be, so a
    version stays a small row and a container's environment stays within what Docker and
    the kernel take."""

    max_vars: int = 200
    max_value_bytes: int = 32 * 1024
    max_total_bytes: int = 256 * 1024

    def check(self, values: Mapping[str, str]) -> None:
        """Refuse an environment past a limit, naming the variable and the setting."""
        if len(values) > self.max_vars:
            raise LimitError(
                f"{len(values)} variables is more than {self.max_vars} (SLIPWAY_ENV_MAX_VARS)"
            )
        total = 0
        for name, value in values.items():
            length = len(value.encode())
            if length > self.max_value_bytes:
                raise LimitError(
                    f"{name}'s value is longer than {size(self.max_value_bytes)} "
                    "(SLIPWAY_ENV_MAX_VALUE_BYTES)"
                )
            total += len(name.encode()) + length
        if total > self.max_total_bytes:
            raise LimitError(
                f"the variables hold more than {size(self.max_total_bytes)} in all "
                "(SLIPWAY_ENV_MAX_TOTAL_BYTES)"
            )
