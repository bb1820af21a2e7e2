"""MkDocs hooks: fill the reference placeholders from the code, so the docs cannot drift from it, and
check that every fenced block renders as a code block (strict mode does not see one that renders as
a line of inline text, as a fence indented less than its list item needs does)."""

from __future__ import annotations

import re
from typing import Any

#: Pages that describe an output, and the pictures of it each must show (docs/images/NAME-THEME.jpg,
#: made by ``make screenshots``), so a page cannot lose its picture or point at one that is gone.
PICTURED = {"index.md": ("magic", "form"), "magic.md": ("magic", "progress"),
            "experiments.md": ("dry-run", "sweep", "compare"), "form.md": ("form",), "batch.md": ("batch",),
            "provenance.md": ("info",)}
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")
_CODE_BLOCK = re.compile(r"<pre[\s>]")


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    from yart_jupyter.core.models import table_markdown
    from yart_jupyter.core.settings import reference
    from yart_jupyter.notebook.magics.commands import markdown as options

    return (markdown.replace("<!-- options-reference -->", options())
            .replace("<!-- settings-reference -->", reference())
            .replace("<!-- models-reference -->", table_markdown()))


def fenced_blocks(markdown: str) -> int:
    """How many fenced blocks the Markdown source opens (a closing fence matches its opening one)."""
    count, opened = 0, ""
    for line in markdown.splitlines():
        match = _FENCE.match(line)
        if match is None:
            continue
        fence = match.group(1)
        if not opened:
            count, opened = count + 1, fence
        elif fence[0] == opened[0] and len(fence) >= len(opened) and not line.strip()[len(fence):].strip():
            opened = ""
    return count


def check_fences(markdown: str, html: str, name: str) -> None:
    """Fail when a page renders fewer code blocks than its source has fences, or has a fence indented
    1-3 spaces (Python-Markdown continues a list item at 4: such a fence ends the list)."""
    from mkdocs.exceptions import PluginError

    for number, line in enumerate(markdown.splitlines(), 1):
        match = _FENCE.match(line)
        if match is not None and 0 < len(line) - len(line.lstrip(" ")) < 4:
            raise PluginError(f"{name}: line {number}: a fenced block indented less than 4 spaces ends its list "
                              "item; indent the fence and its list item's text by 4")
    fences, blocks = fenced_blocks(markdown), len(_CODE_BLOCK.findall(html))
    if blocks < fences:
        raise PluginError(f"{name}: {fences} fenced blocks but {blocks} rendered as code blocks; a fence inside "
                          "a list item must be indented like the item's text")


def check_pictures(markdown: str, name: str, docs_dir: str) -> None:
    """Fail when a page that describes an output does not show its pictures, in both themes."""
    from pathlib import Path

    from mkdocs.exceptions import PluginError

    for picture in PICTURED.get(name, ()):
        for theme in ("light", "dark"):
            path = f"images/{picture}-{theme}.jpg"
            if f"]({path}#only-{theme})" not in markdown:
                raise PluginError(f"{name}: shows no {path}#only-{theme} (the {picture} picture)")
            if not (Path(docs_dir) / path).is_file():
                raise PluginError(f"{name}: {path} does not exist; run make screenshots")


def on_post_build(config: Any, **kwargs: Any) -> None:
    """Put the quickstart as ``make demo`` rendered it beside its page (docs/quickstart.md)."""
    import shutil
    from pathlib import Path

    from mkdocs.exceptions import PluginError

    rendered = Path(config["config_file_path"]).parent / "demo-output" / "quickstart.html"
    if not rendered.is_file():
        raise PluginError(f"{rendered} is missing: make docs runs make demo first")
    target = Path(config["site_dir"]) / "quickstart" / "notebook.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(rendered, target)


def on_page_content(html: str, page: Any, config: Any, **kwargs: Any) -> str:
    check_fences(page.markdown, html, page.file.src_path)
    check_pictures(page.markdown, page.file.src_path, config["docs_dir"])
    return html
