"""services/gateway/v2/edge.py: what counts as usable text and a usable number on /v2."""
from __future__ import annotations

import pytest

from services.gateway.v2.edge import check_int, storable, text_problem
from shared.errors import RegistryError
from shared.http_range import RangeNotSatisfiable, parse_range


@pytest.mark.parametrize("value", ["", "plain", "é ü 漢字 🐳", "tab\there", "a" * 10000])
def test_usable_text(value):
    assert text_problem(value) is None


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "\ud800", "x\udfff", "\udcff"])
def test_unusable_text(value):
    assert text_problem(value) is not None
    assert text_problem(storable(value)) is None


@pytest.mark.parametrize("raw,expected", [("0", 0), ("10", 10), (" 7 ", 7), ("9223372036854775807", 2 ** 63 - 1)])
def test_numbers_that_fit(raw, expected):
    assert check_int("n", raw) == expected


@pytest.mark.parametrize("raw", ["-1", "1e3", "NaN", "inf", "0x10", "", "9223372036854775808", "9" * 20, "9" * 5000, "½", "\u0663"])
def test_numbers_that_do_not_fit_are_400(raw):
    with pytest.raises(RegistryError) as caught:
        check_int("n", raw)
    assert caught.value.status == 400 and caught.value.code == "UNSUPPORTED"


@pytest.mark.parametrize("header", ["bytes=0-" + "9" * 5000, "bytes=" + "9" * 20 + "-", "bytes=-" + "9" * 20])
def test_range_numbers_past_19_digits_are_not_satisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)
