"""HMAC-SHA256, the one way Comptoir signs and keys things with a secret: one-time code
hashes, contact keys, customer tokens, voucher image links, the action server's token.
Each caller keeps its own message format (`purpose:value`), so signatures already handed
out stay valid."""
from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, message: str) -> str:
    """Hex HMAC-SHA256 of `message`."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signature_bytes(secret: str, message: str) -> bytes:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()


def same(expected: str, given: str) -> bool:
    """Compare a signature or a secret in constant time."""
    return hmac.compare_digest(expected.encode(), given.encode())
