"""Encryption at rest of IMAP passwords, with key rotation (MultiFernet)."""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app


def _fernet() -> MultiFernet:
    # The first key encrypts; every key decrypts, so old tokens stay readable after rotation.
    return MultiFernet([Fernet(key) for key in current_app.config["ENCRYPTION_KEYS"]])


def encrypt(plaintext: str) -> bytes:
    """Encrypt a secret with the current key."""
    return _fernet().encrypt(plaintext.encode())


def decrypt(token: bytes) -> str:
    """Decrypt a secret encrypted with any configured key."""
    try:
        return _fernet().decrypt(token).decode()
    except InvalidToken as exc:
        raise RuntimeError("the stored password cannot be decrypted with ENCRYPTION_KEYS") from exc


def open_sealed(token: bytes, max_age: int) -> str | None:
    """A secret sealed by encrypt() at most max_age seconds ago; None if forged or stale."""
    try:
        return _fernet().decrypt(token, ttl=max_age).decode()
    except InvalidToken:
        return None


def rotate(token: bytes) -> bytes:
    """Re-encrypt a secret with the current (first) key."""
    return _fernet().rotate(token)
