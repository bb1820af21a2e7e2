"""GeneratedImage: saving safely, the caption, and the rich display bundle."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from yart_jupyter.core.provenance import read_recipe
from yart_jupyter.core.request import AspectRatio, Message
from yart_jupyter.emulator.images import render
from yart_jupyter.media.image import GeneratedImage, ImageSet

from .helpers import picture_data


def make_image(mime: str = "image/jpeg") -> GeneratedImage:
    data = render([{"text": "t", "weight": 1}], 5, AspectRatio(16, 9), mime)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return GeneratedImage(data, mime, 5, AspectRatio(16, 9), (Message("a red fox"),), "opid0000000000000001",
                          "", "art://f/yandex-art/latest", start, start + timedelta(seconds=12.3))


def test_caption_has_the_essentials() -> None:
    caption = make_image().caption()
    for part in ("seed 5", "aspect 16:9", "1368×768", "12.3 s", "op opid0000000000000001"):
        assert part in caption


def test_save_never_overwrites_silently(tmp_path: Path) -> None:
    image = make_image()
    path = image.save(tmp_path / "sub" / "fox.jpg")
    assert picture_data(path.read_bytes()) == picture_data(image.image_bytes)  # the picture, unchanged
    assert read_recipe(path.read_bytes())["operation_id"] == image.operation_id
    with pytest.raises(FileExistsError):
        image.save(path)
    image.save(path, overwrite=True)
    assert image.save(tmp_path).name == "yandexart-5.jpg"
    assert image.save(tmp_path / "noext").suffix == ".jpg"
    assert image.save(tmp_path / "fox.JPEG").name == "fox.JPEG"
    with pytest.raises(ValueError, match=r"fox.png ends in .png but the picture is image/jpeg: name it .jpg"):
        image.save(tmp_path / "fox.png")  # the service's JPEG bytes under a PNG's name
    assert not (tmp_path / "fox.png").exists()
    from yart_jupyter.core.errors import StorageError
    from yart_jupyter.media.outputs import save_all

    with pytest.raises(StorageError, match=r"Could not save .*x.png: ends in .png but the picture is image/jpeg"):
        save_all(str(tmp_path / "x.png"), [(1, image, {})])  # e.g. resume --out, whose type is known only then
    assert not list(tmp_path.rglob("*.part"))


def test_mimebundle_is_a_figure_with_caption(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YANDEXART_INLINE", "full")  # the service's bytes, as before previews
    for mime in ("image/jpeg", "image/png"):
        image = make_image(mime)
        data, metadata = image._repr_mimebundle_()
        assert metadata["yart_jupyter"]["recipes"][0]["operation_id"] == image.operation_id
        encoded = base64.b64encode(image.image_bytes).decode()
        assert f'src="data:{mime};base64,{encoded}"' in data["text/html"]
        assert "seed 5" in data["text/html"] and "a red fox" in data["text/html"]
        assert "seed 5" in data["text/plain"]


def test_image_set_is_a_grid() -> None:
    images = ImageSet([make_image(), make_image("image/png")])
    html = images._repr_mimebundle_()[0]["text/html"]
    assert html.count("<figure") == 2


def test_repr_is_short_and_informative() -> None:
    text = repr(make_image())
    assert "seed=5" in text and "opid0000000000000001" in text and len(text) < 300
