"""Generated passwords are typed from paper: no character in them looks like another."""

from __future__ import annotations

import math
from collections import Counter

from dbwrapper.passwords import ALPHABET, GENERATED_PASSWORD_BITS, GENERATED_PASSWORD_LENGTH, generate_password

LOOK_ALIKES = "0Oo" "1lIi" "5Ss" "2Zz" "8B"
DRAWS = 5000


def test_no_generated_password_holds_a_look_alike_character():
    drawn = [generate_password() for _ in range(DRAWS)]
    characters = Counter("".join(drawn))
    assert not set(LOOK_ALIKES) & set(characters)
    assert set(characters) == set(ALPHABET)  # every symbol is used: the entropy is not over-claimed
    assert {len(password) for password in drawn} == {GENERATED_PASSWORD_LENGTH}
    assert len(set(drawn)) == DRAWS
    # Uniform: each symbol is drawn about DRAWS * LENGTH / 26 (4038) times; 25 % off is 20 standard deviations.
    expected = DRAWS * GENERATED_PASSWORD_LENGTH / len(ALPHABET)
    assert all(abs(count - expected) < expected / 4 for count in characters.values())


def test_the_alphabet_and_length_give_the_randomness_claimed():
    assert len(set(ALPHABET)) == len(ALPHABET) == 26
    assert ALPHABET.isascii() and ALPHABET == ALPHABET.lower() and ALPHABET.isalnum()
    assert GENERATED_PASSWORD_BITS == GENERATED_PASSWORD_LENGTH * math.log2(26)
    assert 98.7 <= GENERATED_PASSWORD_BITS < 98.8  # as the module says
    assert GENERATED_PASSWORD_BITS >= 96  # the 16 URL-safe base64 characters they replace
