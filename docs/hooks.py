"""MkDocs hook: fill the reference placeholders from the code, so the docs cannot drift from it."""

from __future__ import annotations

from typing import Any


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    from yart_jupyter.magics.commands import markdown as options
    from yart_jupyter.models import table_markdown
    from yart_jupyter.settings import reference

    return (markdown.replace("<!-- options-reference -->", options())
            .replace("<!-- settings-reference -->", reference())
            .replace("<!-- models-reference -->", table_markdown()))
