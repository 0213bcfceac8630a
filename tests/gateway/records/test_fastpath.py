"""Without the C module the package still works: the reference paths answer."""

from __future__ import annotations

import sys

import pytest

import gateway.records
from gateway.records import fastpath


def test_without_the_built_module_there_are_no_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gateway.records._speedups", None)
    monkeypatch.delattr(gateway.records, "_speedups", raising=False)
    assert fastpath.built() is None
    assert fastpath.load(True) is None


def test_the_setting_turns_them_off() -> None:
    assert fastpath.load(False) is None
    assert (fastpath.load(True) is None) == (fastpath.built() is None)
