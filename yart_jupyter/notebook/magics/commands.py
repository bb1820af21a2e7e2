"""The table of ``%yandexart`` subcommands, and the help generated from their parsers."""

from __future__ import annotations

from argparse import Namespace
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from . import cancel, cell, compare, form, history, info, jobs, models, pending, prune, rerun, resume, status
from .face import Face
from .parsers import Parser, ParserFactory


@dataclass(frozen=True)
class Command:
    """One subcommand: its parser and what it does."""

    parser: ParserFactory
    handle: Callable[[Face, Namespace], Awaitable[None]]


COMMANDS: dict[str, Command] = {
    "jobs": Command(jobs.parser, jobs.handle),
    "cancel": Command(cancel.parser, cancel.handle),
    "resume": Command(resume.parser, resume.handle),
    "pending": Command(pending.parser, pending.handle),
    "history": Command(history.parser, history.handle),
    "prune": Command(prune.parser, prune.handle),
    "form": Command(form.parser, form.handle),
    "info": Command(info.parser, info.handle),
    "rerun": Command(rerun.parser, rerun.handle),
    "compare": Command(compare.parser, compare.handle),
    "models": Command(models.parser, models.handle),
    "status": Command(status.parser, status.handle),
}

ONE_LINE = ("%yandexart PROMPT [options]",
            "Generate from a one-line prompt with the cell's options; the prompt may itself contain ' -- '. "
            "A prompt that reads as a mistyped subcommand (histroy, cancle all) or has a word written as an option "
            "(--sead 3) is refused as a typo: draw it in a cell.")
SETTINGS = "Settings: %config YandexArt lists them (folder_id, base_url, default_aspect, max_images, ...)."


def usage() -> str:
    """The whole help: the cell, then every subcommand, rendered from the parsers."""
    parts = [cell.parser().format_help().rstrip(), "", "Line forms:", f"  {ONE_LINE[0]}", f"      {ONE_LINE[1]}"]
    for command in COMMANDS.values():
        p: Parser = command.parser()
        parts.append(f"  {p.format_usage().strip().removeprefix('usage: ')}")
        parts.append(f"      {p.description}")
    parts += ["  %yandexart help", "      This text.", "", SETTINGS]
    return "\n".join(parts)


def markdown() -> str:
    """The same reference as Markdown tables (README and the documentation site)."""
    lines = ["| cell option | what it does |", "|---|---|"]
    lines += [f"| `{_cell(inv)}` | {_cell(text)} |" for inv, text in cell.parser().rows()]
    lines += ["", "| line form | what it does |", "|---|---|", f"| `{ONE_LINE[0]}` | {ONE_LINE[1]} |"]
    for command in COMMANDS.values():
        p = command.parser()
        lines.append(f"| `{_cell(p.format_usage().strip().removeprefix('usage: '))}` | {_cell(p.description or '')} |")
    lines.append("| `%yandexart help` | This reference. |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def rewrite_readme(path: str) -> bool:
    """Replace the README's option block with :func:`markdown`; True when it changed."""
    from pathlib import Path

    file = Path(path)
    text = file.read_text()
    start, end = "<!-- options:start -->\n", "<!-- options:end -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    updated = f"{head}{start}{markdown()}\n{end}{tail}"
    file.write_text(updated)
    return updated != text

