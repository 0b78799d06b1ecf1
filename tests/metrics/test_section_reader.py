"""SectionReader: luigi's spellings and fallbacks, typed values, one-line errors."""

from __future__ import annotations

import pytest

from luigid.config import ConfigError
from luigid.metrics.section_reader import SectionReader


def test_first_present_candidate_wins_in_either_spelling():
    read = SectionReader({"core": {"error-email": "old@example.com"}, "email": {}})
    candidates = [("email", "receiver"), ("core", "error-email")]
    assert read.string(candidates, "") == "old@example.com"
    read = SectionReader(
        {"email": {"receiver": "new@example.com"}, "core": {"error-email": "old@example.com"}}
    )
    assert read.string(candidates, "") == "new@example.com"
    read = SectionReader({"batch_email": {"error-lines": "5"}})
    assert read.integer([("batch_email", "error_lines")], 20) == 5


def test_defaults_when_absent():
    read = SectionReader(None)
    assert read.string([("email", "prefix")], "") == ""
    assert read.boolean([("smtp", "ssl")], False) is False
    assert read.number([("smtp", "timeout")], 10.0) == 10.0
    assert read.string_list([("prometheus", "x")]) == ()
    assert not read.has([("smtp", "ssl")])


def test_native_values_from_toml_are_taken_as_they_are():
    read = SectionReader({"s": {"flag": True, "n": 3, "f": 2.5, "names": ["a", "b"]}})
    assert read.boolean([("s", "flag")], False) is True
    assert read.integer([("s", "n")], 0) == 3
    assert read.number([("s", "f")], 0) == 2.5
    assert read.string_list([("s", "names")]) == ("a", "b")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda r: r.boolean([("smtp", "ssl")], False),
            "[smtp] ssl: expected true or false, got 'yes please'",
        ),
        (lambda r: r.integer([("smtp", "port")], 0), "[smtp] port: expected an integer, got 'twenty-five'"),
        (lambda r: r.number([("smtp", "timeout")], 0), "[smtp] timeout: expected a number, got 'soon'"),
        (
            lambda r: r.choice([("email", "format")], "plain", ("plain", "html", "none")),
            "[email] format: expected one of plain, html, none, got 'rtf'",
        ),
    ],
)
def test_bad_values_are_one_line_naming_section_and_key(call, message):
    read = SectionReader(
        {
            "smtp": {"ssl": "yes please", "port": "twenty-five", "timeout": "soon"},
            "email": {"format": "rtf"},
        }
    )
    with pytest.raises(ConfigError) as exc:
        call(read)
    assert str(exc.value) == message
