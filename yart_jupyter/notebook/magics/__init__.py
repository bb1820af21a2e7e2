"""``%%yandexart`` and ``%yandexart``: a thin face over the engine.

A cell starting with ``%%yandexart`` is rewritten by an input transformer into one top-level
``await`` of :func:`run_cell`, so IPython's autoawait runs it on the kernel's own event loop: the
cell stays busy, its status line updates in place, and an interrupt arrives as a cancellation.
Each subcommand lives in a module of its own (see :mod:`.commands`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand

from ...core import settings
from ...core.config import unread_variables
from ...core.errors import MagicUsageError
from ...experiments.sweep import expand_line
from ..syncrun import run_sync
from . import cell, typos
from .commands import COMMANDS, usage
from .face import Face
from .parsers import split

MAGIC = "yandexart"


async def dispatch_line(shell: Any, line: str) -> None:
    """``%yandexart SUBCOMMAND ...``, ``%yandexart help``, or ``%yandexart PROMPT [options]``."""
    face = Face(shell)
    name, _, rest = line.strip().partition(" ")
    if name in ("", "help"):
        from ...present.html import text_bundle

        face.show(text_bundle(usage().splitlines()))
        return
    command = COMMANDS.get(name)
    if command is not None:
        try:
            arguments = command.parser().parse_args(split(rest))
        except MagicUsageError as exc:
            raise typos.subcommand_or_prompt(exc, name, rest) from None
        await command.handle(face, arguments)
        return
    prompt, options = cell.split_line(line)
    typos.check_line(line, prompt, cell.parser().option_names())  # a typo would spend a generation
    await cell.handle(face, options, prompt)


async def dispatch_cell(shell: Any, line: str, body: str) -> None:
    """A ``%%yandexart`` cell."""
    await cell.handle(Face(shell), line, body)


@magics_class
class YandexArtMagics(Magics):
    """Generate images with YandexART (settings: ``%config YandexArt``)."""

    @cell_magic(MAGIC)  # type: ignore[arg-type]
    @no_var_expand
    def yandexart_cell(self, line: str, cell: str) -> None:
        shell = _loaded()
        run_sync(dispatch_cell(shell, expand_line(line, shell.var_expand), cell))

    @line_magic(MAGIC)  # type: ignore[arg-type]
    @no_var_expand
    def yandexart_line(self, line: str) -> None:
        shell = _loaded()
        run_sync(dispatch_line(shell, expand_line(line, shell.var_expand)))


for _name in ("yandexart_cell", "yandexart_line"):
    getattr(YandexArtMagics, _name).__doc__ = usage()  # %%yandexart? shows the help rendered from the parsers

# -- loading ---------------------------------------------------------------------------------

_shell: InteractiveShell | None = None


def _loaded() -> InteractiveShell:
    if _shell is None:
        raise MagicUsageError("the extension is not loaded: run %load_ext yart_jupyter")
    return _shell


async def run_cell(line: str, cell: str) -> None:
    """What a transformed ``%%yandexart`` cell awaits (the line expanded as IPython would)."""
    shell = _loaded()
    await dispatch_cell(shell, expand_line(line, shell.var_expand), cell)


async def run_line(line: str) -> None:
    """What a transformed one-line ``%yandexart ...`` cell awaits."""
    shell = _loaded()
    await dispatch_line(shell, expand_line(line, shell.var_expand))


def _transformer(shell: InteractiveShell) -> Callable[[list[str]], list[str]]:
    cell_prefix, line_prefix = f"%%{MAGIC}", f"%{MAGIC}"
    target = "__import__('yart_jupyter.notebook.magics', fromlist=['run_cell'])"

    def transform(lines: list[str]) -> list[str]:
        if not lines or not shell.autoawait:
            return lines
        first = lines[0].rstrip("\n")
        if first == cell_prefix or first.startswith(cell_prefix + " "):
            line = first[len(cell_prefix):].strip()
            body = "".join(lines[1:])
            return [f"await {target}.run_cell({line!r}, {body!r})\n"]
        text = "".join(lines).strip()
        if "\n" not in text and (text == line_prefix or text.startswith(line_prefix + " ")):
            return [f"await {target}.run_line({text[len(line_prefix):].strip()!r})\n"]
        return lines

    transform.yart = True  # type: ignore[attr-defined]
    return transform


def load(shell: InteractiveShell) -> None:
    """Register the magics, the input transformer and the settings object (``%config YandexArt``)."""
    global _shell
    _shell = shell
    settings.attach(shell)
    shell.register_magics(YandexArtMagics(shell))
    if not any(getattr(t, "yart", False) for t in shell.input_transformers_cleanup):
        shell.input_transformers_cleanup.append(_transformer(shell))
    for line in unread_variables():  # a mistyped variable is otherwise ignored without a word
        print(f"yart_jupyter: {line}", file=sys.stderr)


def unload(shell: InteractiveShell) -> None:
    """Remove the magics, the transformer and the settings object; running jobs are cancelled."""
    global _shell
    from ...engine.jobs import JOBS

    shell.input_transformers_cleanup[:] = [t for t in shell.input_transformers_cleanup if not getattr(t, "yart", False)]
    for kind in ("cell", "line"):
        shell.magics_manager.magics[kind].pop(MAGIC, None)
    for job in JOBS.running():
        job.task.cancel()
    shell.configurables[:] = [c for c in shell.configurables if not isinstance(c, YandexArtMagics)]
    settings.detach(shell)
    _shell = None
