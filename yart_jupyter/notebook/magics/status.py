"""``%yandexart status``: what this notebook is set up to use, checked without sending anything."""

from __future__ import annotations

from argparse import Namespace

from .face import Face
from .parsers import Parser


def parser() -> Parser:
    return Parser("%yandexart status", "Show what generations would use: the endpoint, the folder, the credentials "
                                       "(redacted), the model and the store, and what stands in the way; nothing "
                                       "is sent to the service.")


async def handle(face: Face, options: Namespace) -> None:
    from ...engine.setup import check_setup

    report = await check_setup(face.settings)
    face.show({"text/html": report._repr_html_(), "text/plain": str(report)})
