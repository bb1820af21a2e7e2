"""The cell-body parser, variable expansion and seed lists."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yart_jupyter.core.prompt import expand, parse_body, parse_seeds
from yart_jupyter.errors import RequestValidationError


def test_lines_join_into_one_message() -> None:
    assert parse_body("a red fox\n  in the snow \n\n") == [("a red fox in the snow", 1.0)]


def test_separators_and_weights() -> None:
    body = "--- 2\na cat\n---\na dog\n--- 0.3\nwatercolour"
    assert parse_body(body) == [("a cat", 2.0), ("a dog", 1.0), ("watercolour", 0.3)]


@pytest.mark.parametrize("body", ["", "   \n", "a\n---\n---\nb", "a\n---", "--- 0.5"])
def test_empty_messages_are_errors(body: str) -> None:
    with pytest.raises(RequestValidationError):
        parse_body(body)


@pytest.mark.parametrize("weight", ["0", "-1", "nan", "inf", "heavy"])
def test_bad_weights(weight: str) -> None:
    with pytest.raises(RequestValidationError, match="weight"):
        parse_body(f"a\n--- {weight}\nb")


def test_expansion() -> None:
    ns = {"style": "oil", "n": 3}
    assert expand("a {style} painting of {n + 1} cats, {{literal}}", ns) == "a oil painting of 4 cats, {literal}"
    assert expand("costs $5", ns) == "costs $5"


def test_expansion_errors_are_one_line() -> None:
    with pytest.raises(RequestValidationError, match="undefined_thing") as info:
        expand("a {undefined_thing}", {})
    assert "--raw" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(RequestValidationError, match="literal braces"):
        expand("unbalanced { brace", {})


def test_seed_lists() -> None:
    assert parse_seeds(["1", "5-8", "3,4"], 16) == [1, 5, 6, 7, 8, 3, 4]
    assert parse_seeds(["2", "2"], 16) == [2]
    for bad in (["abc"], ["-1"], ["5-2"], ["1-100"], [str(2**63)]):
        with pytest.raises(RequestValidationError, match="seed"):
            parse_seeds(bad, 16)
    # what to write instead: the range the right way round; the limit's name and how to raise it
    with pytest.raises(RequestValidationError, match=r"runs backwards: write it LOW-HIGH \(2-5\)"):
        parse_seeds(["5-2"], 16)
    with pytest.raises(RequestValidationError, match=r"100 seeds; at most 16 images at once \(the max_images"):
        parse_seeds(["1-100"], 16)
    with pytest.raises(RequestValidationError, match=r"17 seeds; .*%config YandexArt.max_images = N"):
        parse_seeds(["1-10", "11-17"], 16)
    with pytest.raises(RequestValidationError, match=r"separate seeds with commas \(--seed 1,2,3\)"):
        parse_seeds(["1|2;3"], 16)  # as --vary separates values


@given(st.lists(st.tuples(st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and "\n" not in t
                                                                  and "\r" not in t and not t.strip().startswith("---")
                                                                  and all(c.isprintable() for c in t)),
                          st.floats(min_value=0.01, max_value=100)), min_size=1, max_size=5))
def test_round_trip_property(messages: list[tuple[str, float]]) -> None:
    """Writing messages as a cell body and parsing it gives them back."""
    body = "\n".join(f"--- {w!r}\n{t}" for t, w in messages)
    parsed = parse_body(body)
    assert [(" ".join(t.split()), w) for t, w in parsed] == [(" ".join(t.split()), w) for t, w in messages]
