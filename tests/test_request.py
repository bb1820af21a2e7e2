"""Request validation: every bad value is one clear error and nothing reaches the server."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yart_jupyter import errors
from yart_jupyter.clients.client import YandexArtClient
from yart_jupyter.core.config import Settings
from yart_jupyter.core.request import MAX_SEED, AspectRatio, build_request
from yart_jupyter.emulator import Emulator

BAD_REQUESTS: list[tuple[str, dict[str, Any], str]] = [
    ("empty prompt", {"prompt": ""}, "prompt"),
    ("blank prompt", {"prompt": "   \n\t "}, "prompt"),
    ("501 characters", {"prompt": "x" * 501}, "at most 500"),
    ("control character", {"prompt": "a\x00b"}, "control character"),
    ("no messages", {"prompt": []}, "at least one"),
    ("seed -1", {"seed": -1}, "seed"),
    ("seed 2^63", {"seed": 2**63}, "seed"),
    ("seed abc", {"seed": "abc"}, "seed"),
    ("seed float", {"seed": 1.5}, "seed"),
    ("seed list", {"seed": [1, 2]}, "one seed makes one picture; for several, a generate() each, or batch()"),
    ("aspect 0:1", {"aspect": "0:1"}, "aspect"),
    ("aspect 1:0", {"aspect": "1:0"}, "aspect"),
    ("aspect abc", {"aspect": "abc"}, "aspect"),
    ("aspect 100000:1", {"aspect": "100000:1"}, "aspect"),
    ("aspect in pixels", {"aspect": "1920x1080"}, "(the service takes a ratio, not pixels: 1920x1080 is 16:9)"),
    ("aspect decimal", {"aspect": "1.5"}, "(1.5 is 3:2)"),
    ("aspect 5:1", {"aspect": "5:1"}, "between 1:4 and 4:1"),
    ("unknown preset", {"aspect": "cinemascope"}, "aspect"),
    ("weight 0", {"prompt": [("a", 0)]}, "weight"),
    ("weight negative", {"prompt": [("a", -1)]}, "negative prompts"),
    ("weight NaN", {"prompt": [("a", math.nan)]}, "weight"),
    ("weight text", {"prompt": [("a", "heavy")]}, "weight"),
    ("mime gif", {"mime_type": "image/gif"}, "mime_type"),
    ("model uri", {"model_uri": "https://example.com/model"}, "model_uri"),
]


@pytest.mark.parametrize("case,kwargs,needle", BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
async def test_bad_request_sends_nothing(
    case: str, kwargs: dict[str, Any], needle: str, client: YandexArtClient, emulator: Emulator
) -> None:
    kwargs = {"prompt": "a fine prompt", **kwargs}
    prompt = kwargs.pop("prompt")
    with pytest.raises(errors.RequestValidationError) as info:
        await client.generate(prompt, **kwargs)
    message = str(info.value)
    assert needle in message
    assert "\n" not in message
    assert emulator.stats.requests == 0


async def test_no_folder_sends_nothing(make_client: Callable[..., YandexArtClient], emulator: Emulator) -> None:
    async with make_client(folder_id=None) as client:
        with pytest.raises(errors.RequestValidationError, match="YC_FOLDER_ID"):
            await client.generate("where", seed=1)
    assert emulator.stats.requests == 0


def test_base_url_must_be_http() -> None:
    with pytest.raises(errors.ConfigurationError, match="not an http"):
        YandexArtClient(base_url="ftp://example.com", api_key="k", env={})
    with pytest.raises(errors.ConfigurationError):
        Settings.from_env({"YANDEXART_BASE_URL": "llm.api.cloud.yandex.net"})


async def test_credentials_never_sent_over_plain_http_to_remote() -> None:
    client = YandexArtClient(base_url="http://example.invalid", api_key="secret-key-abcdef", folder_id="f", env={})
    async with client:
        with pytest.raises(errors.ConfigurationError, match="plain http"):
            await client.generate("x", seed=1)


def test_request_json_shape() -> None:
    request = build_request("succulents", seed=1863, aspect="2:1", folder_id="b1gfolder")
    assert request.to_json() == {
        "modelUri": "art://b1gfolder/yandex-art/latest",
        "generationOptions": {
            "mimeType": "image/jpeg",
            "seed": "1863",
            "aspectRatio": {"widthRatio": "2", "heightRatio": "1"},
        },
        "messages": [{"text": "succulents", "weight": "1"}],
    }


def test_text_is_trimmed_and_presets_resolve() -> None:
    request = build_request("  padded  ", seed="42", aspect="wide", folder_id="f")
    assert request.messages[0].text == "padded"
    assert request.seed == 42
    assert str(request.aspect) == "16:9"
    assert request.seed_was_given


def test_missing_seed_is_chosen() -> None:
    seeds = {build_request("x", folder_id="f").seed for _ in range(20)}
    assert len(seeds) == 20 and all(1 <= s <= MAX_SEED for s in seeds)


def test_pixel_sizes_are_about_a_megapixel() -> None:
    for ratio in ("1:1", "2:1", "16:9", "9:16", "21:9", "4:1"):
        w, h = AspectRatio.parse(ratio).pixel_size()
        assert 0.9 < w * h / 1024**2 < 1.1


@given(st.text(min_size=0, max_size=600))
def test_prompt_validation_property(text: str) -> None:
    """Any text either validates to 1-500 clean characters or raises the one typed error."""
    try:
        request = build_request(text, seed=1, folder_id="f")
    except errors.RequestValidationError as exc:
        assert exc.field == "prompt"
        assert "\n" not in str(exc)
        return
    assert 1 <= len(request.messages[0].text) <= 500
    assert request.messages[0].text == request.messages[0].text.strip()


@given(st.one_of(st.integers(), st.text(max_size=25), st.floats(), st.booleans(), st.none()))
def test_seed_validation_property(seed: Any) -> None:
    try:
        request = build_request("x", seed=seed, folder_id="f")
    except errors.RequestValidationError as exc:
        assert exc.field == "seed"
        return
    assert 0 <= request.seed <= MAX_SEED


@given(st.integers(-5, 2000), st.integers(-5, 2000))
def test_aspect_validation_property(w: int, h: int) -> None:
    try:
        ratio = AspectRatio.parse(f"{w}:{h}")
    except errors.RequestValidationError as exc:
        assert exc.field == "aspect"
        return
    assert 1 <= ratio.width <= 1000 and 1 <= ratio.height <= 1000
    assert max(w, h) <= 4 * min(w, h)
