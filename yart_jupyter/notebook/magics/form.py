"""``%yandexart form``: show the widget form in this cell."""

from __future__ import annotations

from argparse import Namespace

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    return Parser("%yandexart form", "Show the widget form (the same engine, store and settings).")


async def handle(face: Face, options: Namespace) -> None:
    from ..widget import form

    face.display(form())
