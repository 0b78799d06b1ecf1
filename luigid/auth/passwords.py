"""Password hashes and bearer tokens, as stored in the users file.

Passwords are hashed with scrypt and a random per-user salt (``scrypt$N$r$p$salt$hash``,
base64); checking one costs tens of milliseconds on purpose, so the guard runs it off the
event loop and remembers successes. Bearer tokens are long random secrets, so a plain
SHA-256 of the token (``token$hex``) is enough to keep the file useless to a reader.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_KEY_LENGTH = 32
_SALT_BYTES = 16
TOKEN_PREFIX = "lgd_"

PASSWORD_SCHEME = "scrypt"
TOKEN_SCHEME = "token"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=128 * r * (n + p + 2) + 1024 * 1024,
        dklen=_KEY_LENGTH,
    )


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"{PASSWORD_SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def parse_password_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """(n, r, p, salt, digest) of a stored hash; ValueError when it is not one of ours."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != PASSWORD_SCHEME:
        raise ValueError("not an scrypt$N$r$p$salt$hash password hash")
    n, r, p = (int(x) for x in parts[1:4])
    if n < 2 or n & (n - 1) or not 0 < r <= 64 or not 0 < p <= 16 or n > 2**20:
        raise ValueError("scrypt parameters out of range")
    salt, digest = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    if not salt or len(digest) != _KEY_LENGTH:
        raise ValueError("bad salt or hash length")
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a stored hash (False when malformed)."""
    try:
        n, r, p, salt, digest = parse_password_hash(stored)
    except ValueError:
        return False
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), digest)


#: Checked against when the user does not exist, so unknown names cost as much as known ones.
_NO_SALT = _b64(b"luigid-no-user!!")
DUMMY_HASH = f"{PASSWORD_SCHEME}${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_NO_SALT}${_b64(bytes(_KEY_LENGTH))}"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_token(token: str) -> str:
    return f"{TOKEN_SCHEME}${token_digest(token)}"


def parse_token_hash(stored: str) -> str:
    """The hex digest of a stored token; ValueError when it is not one."""
    scheme, _, digest = stored.partition("$")
    if scheme != TOKEN_SCHEME or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("not a token$<sha256 hex> entry")
    return digest
