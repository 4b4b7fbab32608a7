"""parse_file's registry and guards, normalise_text, and never-raise on hostile bytes."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from question_bank.formats import (
    DIFFICULTIES,
    FORMATS,
    MAX_FILE_BYTES,
    QUESTION_TYPES,
    ParsedOption,
    ParsedQuestion,
    ParseResult,
    RowError,
    UnsupportedFormat,
    export_file,
    fingerprint,
    normalise_text,
    parse_file,
)
from tests.question_bank.formats.format_helpers import HEADER, assert_error, good_row, make_xlsx


def test_public_constants_and_registry():
    assert DIFFICULTIES == ("easy", "medium", "hard")
    assert QUESTION_TYPES == ("single", "multiple")
    assert MAX_FILE_BYTES == 20 * 1024 * 1024
    assert set(FORMATS) == {".xlsx", ".csv", ".gift", ".txt", ".json"}


@pytest.mark.parametrize("name, fmt", [
    ("a.xlsx", "xlsx"), ("A.XLSX", "xlsx"), ("C:\\Users\\Lan\\bank.csv", "csv"), ("x.gift", "gift"),
    ("de-thi.txt", "aiken"), ("demo.bank.json", "json"),
])
def test_extension_chooses_parser(name, fmt):
    assert parse_file(name, b"x").format == fmt


@pytest.mark.parametrize("name", ["bank.xls", "bank.docx", "bank", ".csv", "bank.csv.exe"])
def test_unsupported_extension(name):
    result = parse_file(name, b"data")
    assert not result.ok and result.questions == []
    assert len(result.errors) == 1
    error = result.errors[0]
    assert (error.location, error.field) == ("file", "")
    assert "unsupported file type" in error.reason
    for ext in (".xlsx", ".csv", ".gift", ".txt", ".json"):
        assert ext in error.reason


@pytest.mark.parametrize("name", ["a.csv", "a.json", "a.gift", "a.txt", "a.xlsx"])
def test_oversize_and_empty(name):
    big = parse_file(name, b"x" * 101, max_bytes=100)
    assert [str(e) for e in big.errors] == [
        "file: is too large (101 bytes; the limit is 100 bytes); split it into smaller files"]
    assert_error(parse_file(name, b""), "file", "", "is empty")


def test_default_topic_is_normalised_and_checked():
    data = make_xlsx([HEADER, good_row(topic="")])
    decomposed = unicodedata.normalize("NFD", "Kiến thức chung>Hiến pháp")
    result = parse_file("a.xlsx", data, default_topic=decomposed)
    assert result.ok and result.questions[0].topic == "Kiến thức chung > Hiến pháp"
    assert_error(parse_file("a.xlsx", data, default_topic="A >> B"), "file", "topic", "default topic")


def test_row_error_str():
    assert str(RowError("row 7", "option_c", "is blank")) == "row 7, option_c: is blank"
    assert str(RowError("file", "", "is empty")) == "file: is empty"
    assert ParseResult([], [], "csv").ok


@pytest.mark.parametrize("raw, expected", [
    ("  a \t\t b  ", "a b"),
    ("a\r\nb\rc", "a\nb\nc"),
    ("dòng 1  \n   dòng 2", "dòng 1\ndòng 2"),
    ("zero\u200bwidth\ufeff\u2060", "zerowidth"),
    ("ctrl\x00\x07\x1b chars", "ctrl chars"),
    ("no\u00a0break\u2009thin", "no break thin"),
    ("đoạn 1\n\nđoạn 2", "đoạn 1\n\nđoạn 2"),
    ("bidi\u202eoverride", "bidioverride"),
    ("", ""),
])
def test_normalise_text(raw, expected):
    assert normalise_text(raw) == expected


def test_normalise_text_nfc():
    for word in ("Việt Nam", "Hiến pháp", "Ủy ban nhân dân", "khó", "Quốc hội khóa XIII"):
        assert normalise_text(unicodedata.normalize("NFD", word)) == word
    # A zero-width character between letter and accent must not keep them apart.
    assert normalise_text("Vie\u0302\u200b\u0323t") == "Việt"


@given(st.text())
@settings(max_examples=200, deadline=None)
def test_normalise_text_is_idempotent(s):
    once = normalise_text(s)
    assert normalise_text(once) == once
    assert unicodedata.is_normalized("NFC", once)


def test_fingerprint_ignores_order_and_case():
    a = ParsedQuestion("", "T", "easy", "single", "Thủ đô?", [ParsedOption("Hà Nội", True), ParsedOption("Huế", False)])
    b = ParsedQuestion("", "U", "hard", "single", "THỦ ĐÔ?", [ParsedOption("huế", True), ParsedOption("hà nội", False)])
    c = ParsedQuestion("", "T", "easy", "single", "Thủ đô?",
                       [ParsedOption("Hà Nội", True), ParsedOption("Đà Nẵng", False)])
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def test_export_file_by_name():
    with pytest.raises(UnsupportedFormat):
        export_file("gift", [])
    assert export_file("json", []).startswith(b"{")


# Hostile bytes: parse_file must turn anything into errors, never raise.
@pytest.mark.parametrize("name", ["a.csv", "a.json", "a.gift", "a.txt", "a.xlsx"])
@given(data=st.binary(max_size=400))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_bytes_never_raise(name, data):
    result = parse_file(name, data, default_topic="T")
    assert isinstance(result, ParseResult)


@given(cut=st.integers(min_value=1, max_value=4000), flip=st.integers(min_value=0, max_value=255))
@settings(max_examples=40, deadline=None)
def test_damaged_xlsx_never_raises(cut, flip):
    good = _GOOD_XLSX
    position = cut % len(good)
    damaged = good[:position] + bytes([flip]) + good[position + 1:]
    result = parse_file("a.xlsx", damaged)
    assert isinstance(result, ParseResult)
    truncated = parse_file("a.xlsx", good[:position])
    assert not truncated.ok


_GOOD_XLSX = make_xlsx([HEADER, good_row(), good_row(text="Câu 2?")])
