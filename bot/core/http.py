"""HTTP helpers shared by the gateway's endpoints, the tills' API and Rasa's input channel."""
from __future__ import annotations

import json
from typing import Optional

from aiohttp import web

from bot.core.signing import same


def bearer_matches(header: str, token: Optional[str]) -> bool:
    """Does an Authorization header carry exactly `Bearer <token>`? (constant time; no
    token configured matches nothing)"""
    return bool(token) and same(f"Bearer {token}", header)


def require_bearer(request: web.Request, token: Optional[str]) -> None:
    """401 unless the request carries `Bearer <token>`; no token configured refuses all."""
    if not bearer_matches(request.headers.get("Authorization", ""), token):
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "Jeton d'accès manquant ou invalide."}),
            content_type="application/json", headers={"WWW-Authenticate": "Bearer"})
