"""Generated passwords: the one generator for users' accounts, their databases' logins and the
embedded server's super-user alike.

They are shown once (on a page, a class's printed sheet, the command line) and typed by a
trainee, often from paper, so their alphabet leaves out every character that looks like another
in print: ``0 O o``, ``1 l I i``, ``5 S s``, ``2 Z z``, ``8 B``, and upper case altogether (``c C``,
``k K``, ``x X``... differ only in size; a phone's keyboard needs no shift). What is left is
lower-case letters and digits, which also fit any SQLAlchemy URL and command line unquoted.

Its 26 symbols carry log2(26) = 4.70 bits each: 21 of them make 98.7 random bits, more than the
96 bits of the 16 URL-safe base64 characters used before.
"""

from __future__ import annotations

import math
import secrets

ALPHABET = "abcdefghjkmnpqrtuvwxy34679"
GENERATED_PASSWORD_LENGTH = 21
#: The randomness of one generated password: 98.7 bits.
GENERATED_PASSWORD_BITS = GENERATED_PASSWORD_LENGTH * math.log2(len(ALPHABET))


def generate_password() -> str:
    """A new random password of :data:`GENERATED_PASSWORD_LENGTH` characters of
    :data:`ALPHABET`, each drawn by :mod:`secrets` (uniformly, from the system's CSPRNG)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH))
