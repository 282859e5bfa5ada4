"""The audit key: one Ed25519 key pair signs audit checkpoints and purge receipts.

Keys are read here and nowhere else, so that a missing file, a key that is not
PEM, an encrypted key or a key of another algorithm gets the same clear error
(what, which file, how to make a good one) from the CLI, the privacy center and
users' own code, instead of a traceback from `cryptography`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["MAKE_KEY", "private_key", "public_key"]

#: How to make a key pair that consentry accepts.
MAKE_KEY = ("make one with `openssl genpkey -algorithm ed25519 -out audit-key.pem`; "
            "its public half with `openssl pkey -in audit-key.pem -pubout -out audit-key.pub.pem`")


def _pem(key: bytes | str | Path, what: str) -> tuple[bytes, str]:
    """The PEM bytes and where they came from (a file's name, or `what`)."""
    if isinstance(key, bytes):
        return key, what
    path = Path(key)
    where = f"{what} {path}"
    try:
        return path.read_bytes(), where
    except FileNotFoundError:
        raise InputError("no such file", where=where, fix=MAKE_KEY) from None
    except IsADirectoryError:
        raise InputError("is a folder, not a key file", where=where) from None
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror})", where=where) from None


def _kind(key: object) -> str:
    """RSA, EC, Ed448, ...: the key's class name without its half."""
    return type(key).__name__.lstrip("_").removesuffix("PrivateKey").removesuffix("PublicKey")


def private_key(key: bytes | str | Path, *, what: str = "the audit key") -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM bytes or a PEM file (unencrypted, PKCS#8)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem, where = _pem(key, what)
    try:
        k = serialization.load_pem_private_key(pem, password=None)
    except TypeError:  # cryptography: "Password was not given but private key is encrypted"
        raise InputError("is encrypted with a passphrase; consentry needs it unencrypted, kept where only it can read",
                         where=where, fix="`openssl pkey -in KEY -out audit-key.pem` writes it without one") from None
    except Exception as exc:  # noqa: BLE001 - cryptography raises ValueError or its own UnsupportedAlgorithm
        if b"PUBLIC KEY-----" in pem:
            raise InputError("is a public key; signing needs the private key it was made from", where=where) from None
        detail = f" ({str(exc).split('.')[0]})" if str(exc) else ""
        raise InputError(f"is not a PEM private key{detail}", where=where, fix=MAKE_KEY) from None
    if not isinstance(k, Ed25519PrivateKey):
        raise InputError(f"holds a key of type {_kind(k)}; the audit key is Ed25519", where=where, fix=MAKE_KEY)
    return k


def public_key(key: bytes | str | Path, *, what: str = "the public key") -> Ed25519PublicKey:
    """An Ed25519 public key from PEM bytes or a PEM file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    pem, where = _pem(key, what)
    try:
        k = serialization.load_pem_public_key(pem)
    except Exception:  # noqa: BLE001 - ValueError, or cryptography's UnsupportedAlgorithm
        if b"PRIVATE KEY-----" in pem:
            raise InputError("is a private key; checking needs only its public half", where=where,
                             fix="`openssl pkey -in KEY -pubout -out audit-key.pub.pem` writes it") from None
        raise InputError("is not a PEM public key", where=where, fix=MAKE_KEY) from None
    if not isinstance(k, Ed25519PublicKey):
        raise InputError(f"holds a key of type {_kind(k)}; the audit key is Ed25519", where=where, fix=MAKE_KEY)
    return k
