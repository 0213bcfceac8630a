"""Credit flow control: the server never sends more records than the client granted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.streams.credit import MAX_CREDIT, CreditWindow, InvalidCredit

# A client's part: grant n records, or the server sends what the window allows.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(1, 1000)),
        st.tuples(st.just("send"), st.integers(1, 600)),
    ),
    max_size=60,
)


@given(st.one_of(st.none(), st.integers(0, 1000)), steps, st.integers(1, 500))
def test_sent_never_exceeds_granted(
    initial: int | None, script: list[tuple[str, int]], frame_records: int
) -> None:
    window = CreditWindow(initial)
    granted = initial or 0
    credited = initial is not None
    sent_in_credit = 0
    for action, n in script:
        if action == "grant":
            window.grant(n)
            granted += n
            credited = True
            continue
        allowed = window.allowance(frame_records)
        assert 0 <= allowed <= frame_records
        if not credited:
            assert allowed == frame_records  # the default window: one frame at a time
        sending = min(n, allowed)
        window.spend(sending)
        if credited:
            sent_in_credit += sending
            assert sent_in_credit <= granted
            assert window.left == granted - sent_in_credit
    if credited:
        assert window.sent == sent_in_credit
        assert window.granted == granted


def test_ten_credits_send_ten_then_nothing_until_more() -> None:
    window = CreditWindow(10)
    assert window.allowance(500) == 10
    window.spend(7)
    assert window.allowance(500) == 3
    window.spend(3)
    assert window.allowance(500) == 0
    window.grant(5)
    assert window.allowance(500) == 5


def test_sending_past_the_credit_is_a_bug_caught() -> None:
    window = CreditWindow(2)
    with pytest.raises(ValueError, match="credit for 2"):
        window.spend(3)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True, None])
def test_a_grant_is_a_positive_integer(bad: object) -> None:
    with pytest.raises(InvalidCredit):
        CreditWindow().grant(bad)  # type: ignore[arg-type]


def test_credit_is_clamped_not_overflowed() -> None:
    window = CreditWindow(MAX_CREDIT)
    window.grant(10)
    assert window.left == MAX_CREDIT


@given(st.one_of(st.none(), st.integers(0, 1000)), steps, st.integers(1, 500))
def test_take_is_allowance_and_spend_in_one(
    initial: int | None, script: list[tuple[str, int]], frame_records: int
) -> None:
    """A feed's one call per delivery decides and spends as the pump's two calls do,
    and a refund undoes it."""
    one, two = CreditWindow(initial), CreditWindow(initial)
    for action, n in script:
        if action == "grant":
            one.grant(n)
            two.grant(n)
            continue
        covered = two.allowance(frame_records) >= n
        if covered:
            two.spend(n)
        assert one.take(n, frame_records) is covered
        assert (one.left, one.sent) == (two.left, two.sent)
        if covered:
            one.refund(n)
            assert one.take(n, frame_records)
        assert (one.left, one.sent) == (two.left, two.sent)
