"""Generated passwords: for users' accounts and for their databases' logins alike.

Both are shown once (on a page, a class sheet, the command line) and typed or
pasted by a trainee, so they are URL-safe, fit any SQLAlchemy URL without
quoting, and carry 96 random bits.
"""

from __future__ import annotations

import secrets

GENERATED_PASSWORD_BYTES = 12  # 16 characters of URL-safe base64


def generate_password() -> str:
    """A new random password."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
