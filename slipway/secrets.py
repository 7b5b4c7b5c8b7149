"""Environment values sealed with a key only Slipway's own processes hold, so Temporal's
history, the database and the logs only ever carry ciphertext of them."""

from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from slipway.private_files import private_file
from slipway.settings import Settings


class SecretError(ValueError):
    """A sealed value cannot be opened with this key; the message says what to check."""


def _key_file(home: Path) -> Path:
    return home / "secret.key"


def load_key(settings: Settings) -> bytes:
    """`SLIPWAY_SECRET_KEY`, else the key file under home, made on first use. Every process
    that seals or opens values must share it: the CLI and the workers."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    return private_file(_key_file(settings.home), Fernet.generate_key)


def seal(values: Mapping[str, str], key: bytes) -> dict[str, str]:
    """Each value encrypted (names stay readable: they are not secret)."""
    box = Fernet(key)
    return {name: box.encrypt(value.encode()).decode() for name, value in values.items()}


def unseal(sealed: Mapping[str, str], key: bytes) -> dict[str, str]:
    """The values `seal` encrypted with the same key."""
    box = Fernet(key)
    try:
        return {name: box.decrypt(token.encode()).decode() for name, token in sealed.items()}
    except InvalidToken:
        raise SecretError(
            "the deployment's environment was sealed with another key: give every Slipway "
            "process the same SLIPWAY_SECRET_KEY (or the same home)"
        ) from None
