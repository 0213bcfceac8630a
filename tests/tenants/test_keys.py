"""API key format: recognisable, checksummed, refused when altered."""

import string

from hypothesis import given
from hypothesis import strategies as st

from tenants import keys


def test_minted_key_has_prefix_id_secret_and_checksum() -> None:
    key_id, key = keys.mint_key()
    assert key.startswith("tg_")
    assert key[3:15] == key_id
    assert keys.parse_key(key) == (key_id, key[16:59])
    assert not keys.is_bootstrap_key(key)


def test_minted_keys_are_unique() -> None:
    assert len({keys.mint_key()[1] for _ in range(200)}) == 200


@given(st.data())
def test_any_single_character_change_is_refused(data: st.DataObject) -> None:
    _, key = keys.mint_key()
    i = data.draw(st.integers(min_value=3, max_value=len(key) - 1))
    alphabet = string.ascii_letters + string.digits + "_-"
    # What is drawn must not depend on the key (minted anew on every replay): a shift
    # along the alphabet, never zero, names the replacement character.
    shift = data.draw(st.integers(min_value=1, max_value=len(alphabet) - 1))
    c = alphabet[(alphabet.find(key[i]) + shift) % len(alphabet)]
    assert c != key[i]
    assert keys.parse_key(key[:i] + c + key[i + 1 :]) is None


def test_truncated_or_extended_keys_are_refused() -> None:
    _, key = keys.mint_key()
    assert keys.parse_key(key[:-1]) is None
    assert keys.parse_key(key + "0") is None
    assert keys.parse_key(key + "\n") is None
    assert keys.parse_key("") is None


def test_bootstrap_keys_are_long_tg_strings() -> None:
    assert keys.is_bootstrap_key("tg_" + "x" * 29)
    assert not keys.is_bootstrap_key("tg_" + "x" * 28)
    assert not keys.is_bootstrap_key("xx_" + "x" * 40)


def test_secret_hash_is_peppered_and_compared_in_constant_time() -> None:
    stored = keys.hash_secret("s3cret", b"pepper-1")
    assert keys.secret_matches("s3cret", stored, b"pepper-1")
    assert not keys.secret_matches("s3cret", stored, b"pepper-2")
    assert not keys.secret_matches("s3cres", stored, b"pepper-1")
    assert "s3cret" not in stored
