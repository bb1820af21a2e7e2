"""Argument parsers of the magic, each option with its own help; the help text is generated here.

``%%yandexart?``, ``%yandexart help``, the README's option table and the documentation site's
reference are all rendered from these parsers, so they cannot disagree.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from typing import Any

from ...core.errors import MagicUsageError
from ...core.typos import unknown_option_hint

#: Fixed width, so the help reads the same in a terminal, a notebook and the docs.
WIDTH = 96


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=WIDTH, max_help_position=28)


class Parser(argparse.ArgumentParser):
    """An argparse parser that raises :class:`MagicUsageError` instead of exiting the kernel."""

    def __init__(self, prog: str, description: str, **kwargs: Any) -> None:
        super().__init__(
            prog=prog, description=description, add_help=False, allow_abbrev=False,
            formatter_class=_Formatter,
            **kwargs,
        )

    def error(self, message: str) -> Any:
        raise MagicUsageError(f"{self.prog}: {message}{unknown_option_hint(message, self.option_names())}")

    def option_names(self) -> set[str]:
        """Every option string this parser knows (``--seed``, ``-n`` ...)."""
        return {name for action in self._actions for name in action.option_strings}

    def rows(self) -> list[tuple[str, str]]:
        """(invocation, help) for each argument, as the help shows them; an option with several
        names shows its argument after each (``-n N, --count N``) on every Python (3.13's argparse
        writes ``-n, --count N``), so the README's table is the same whichever made it."""
        formatter = self._get_formatter()
        rows = []
        for action in self._actions:
            invocation = formatter._format_action_invocation(action)
            if len(action.option_strings) > 1 and action.nargs != 0:
                args = formatter._format_args(action, formatter._get_default_metavar_for_optional(action))
                invocation = ", ".join(f"{option} {args}" for option in action.option_strings)
            rows.append((invocation, (action.help or "") % {"default": action.default}))
        return rows


def split(line: str) -> list[str]:
    """Shell-like words of an option line; a quoting mistake is a usage error."""
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise MagicUsageError(f"cannot read the options: {exc}") from None


#: A subcommand's parser, built on demand (parsers are cheap, and %load_ext stays fast).
ParserFactory = Callable[[], Parser]
