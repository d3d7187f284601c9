"""The checks every config section shares: one wording, problems collected, never raised."""

from __future__ import annotations

from typing import Any

import pytest

from sanic_edge_auth.errors import ConfigProblem
from sanic_edge_auth.secret import Secret
from sanic_edge_auth.settings_reader import SettingsReader


def problems(read: SettingsReader) -> list[tuple[str, str]]:
    return [(problem.key, problem.message) for problem in read.problems]


def test_missing_stays_quiet_when_the_key_already_has_a_problem() -> None:
    read = SettingsReader()
    read.problem("a.b", "references $env.X, which is not set in the environment")
    read.missing("a.b")
    read.missing("a.c")
    assert problems(read) == [
        ("a.b", "references $env.X, which is not set in the environment"),
        ("a.c", "is required"),
    ]


def test_unknown_keys_suggest_the_closest_and_top_level_keys_have_no_prefix() -> None:
    read = SettingsReader()
    known = frozenset({"scope", "audience"})
    read.unknown_keys("authorizer", {"scpoe": 1, "audience": 2, "zzz": 3}, known)
    read.unknown_keys("", {"pathz": []}, frozenset({"paths"}))
    assert problems(read) == [
        ("authorizer.scpoe", "unknown key (did you mean 'scope'?)"),
        ("authorizer.zzz", "unknown key"),
        ("pathz", "unknown key (did you mean 'paths'?)"),
    ]


def test_a_section_may_word_unknown_keys_its_own_way() -> None:
    read = SettingsReader(unknown_key="is not a known key")
    assert read.section("store", {"urll": "x"}, frozenset({"url"})) == {"urll": "x"}
    assert problems(read) == [("store.urll", "is not a known key (did you mean 'url'?)")]


def test_a_key_that_is_not_a_string_is_named_not_a_crash() -> None:
    read = SettingsReader()
    read.unknown_keys("session", {1: 2}, frozenset({"secret"}))
    assert read.problems == [ConfigProblem("session.1", "unknown key")]


@pytest.mark.parametrize(("value", "expected"), [(None, {}), ([], {}), ("x", {})])
def test_section_is_empty_when_absent_or_not_an_object(value: Any, expected: Any) -> None:
    read = SettingsReader()
    assert read.section("store.tls", value, frozenset()) == expected
    assert problems(read) == ([] if value is None else [("store.tls", "must be an object")])


def test_text_strips_reveals_and_reports() -> None:
    read = SettingsReader()
    assert read.text("a", "  x ") == "x"
    assert read.text("b", Secret("name")) == "name"
    assert read.text("c", None) is None
    assert read.text("d", None, required=True) is None
    assert read.text("e", " ") is None
    assert read.text("f", 3) is None
    assert problems(read) == [
        ("d", "is required"),
        ("e", "must be a non-empty string"),
        ("f", "must be a non-empty string"),
    ]


def test_secret_wraps_strings_and_says_why_it_is_required() -> None:
    read = SettingsReader()
    wrapped = read.secret("a", "value")
    assert isinstance(wrapped, Secret)
    assert wrapped.reveal() == "value"
    assert read.secret("b", None) is None
    assert read.secret("c", None, required=True, why=" because of d") is None
    assert read.secret("e", Secret("")) is None
    assert problems(read) == [
        ("c", "is required because of d"),
        ("e", "must be a non-empty string (normally a $secret.NAME reference)"),
    ]


def test_a_secret_entry_may_not_be_null() -> None:
    read = SettingsReader()
    assert read.secret_entry("s[0]", None) is None
    assert problems(read) == [
        ("s[0]", "must be a non-empty string (normally a $secret.NAME reference)")
    ]


def test_long_enough() -> None:
    read = SettingsReader()
    assert read.long_enough("a", Secret("x" * 32), 32)
    assert not read.long_enough("b", Secret("x" * 31), 32)
    assert problems(read) == [("b", "is too short: use at least 32 random characters")]


def test_number_and_integer_fall_back_to_the_default() -> None:
    read = SettingsReader()
    assert read.number("a", None, 1.5, low=0, high=2) == 1.5
    assert read.number("b", 2, 1.5, low=0, high=2) == 2.0
    assert read.number("c", True, 1.5, low=0, high=2) == 1.5
    assert read.number("d", 0.01, 1.5, low=0.1, high=2) == 1.5
    assert read.integer("e", None, 7, low=0, high=10) == 7
    assert read.integer("f", 1.0, 7, low=0, high=10) == 7
    assert read.integer("g", 11, 7, low=0, high=10) == 7
    assert problems(read) == [
        ("c", "must be a number"),
        ("d", "must be between 0.1 and 2, got 0.01"),
        ("f", "must be a whole number"),
        ("g", "must be between 0 and 10, got 11"),
    ]


def test_flag_and_string_list() -> None:
    read = SettingsReader()
    assert read.flag("a", True) is True
    assert read.flag("b", None) is False
    assert read.string_list("c", None) is None
    assert read.string_list("d", ["x", "y"]) == ("x", "y")
    assert read.string_list("e", ["x", ""]) is None
    assert problems(read) == [
        ("b", "must be true or false"),
        ("e", "must be a list of non-empty strings"),
    ]
