"""Secrets at rest (platform client secrets, webhook HMAC keys), encrypted with
Fernet. The key comes from RELAY_ENCRYPTION_KEY, or is derived from SECRET_KEY
when that is unset, so a database dump alone does not reveal them."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet() -> Fernet:
    configured = getattr(settings, "RELAY_ENCRYPTION_KEY", "")
    if configured:
        return Fernet(configured.encode())
    digest = hashlib.sha256(f"portal.relay:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode() if plain else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ValueError("Secret illisible : la clé de chiffrement a changé.") from error
