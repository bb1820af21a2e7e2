"""What a one-line ``%yandexart ...`` most likely mistyped: a subcommand or an option.

A one-liner whose words are not a subcommand is a prompt, and a prompt is paid for: ``%yandexart
cancle all`` or ``%yandexart a fox --sead 3`` would spend a generation on a typo (the second with
a random seed, "--sead 3" drawn into the picture). These are refused with what was most likely
meant; a prompt that only looks like one is drawn from a ``%%yandexart`` cell, where the body is
the prompt whatever it says.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from ...core.errors import MagicUsageError
from ...core.typos import closest
from .cell import parser as cell_parser
from .commands import COMMANDS
from .parsers import split

_IN_A_CELL = "to draw it, put the prompt in a %%yandexart cell"
#: A word no prose has: a history entry, a job, an operation id (20 letters and digits, or the
#: Images API's img-...), a number, or ``all``.
_STRUCTURED = re.compile(r"#\d+|j\d+|(?=[a-z0-9]*\d)[a-z0-9]{20}|img-[0-9a-f]+|-?\d+(\.\d+)?|all")
#: The files subcommands read (info, rerun, compare): a word naming one is no prose.
_FILES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".ipynb", ".html", ".htm"}
#: What a list of seeds holds: numbers, ranges, commas, a notebook name in braces.
_SEEDS = re.compile(r"[\d,\-]+|\{\w+\}")
#: A word written as an option: ``--sead``, ``--sead=3``, ``-seed``.
_OPTION_LIKE = re.compile(r"(--?)([A-Za-z][\w-]*)(=.*)?")


def check_line(line: str, prompt: str, options: set[str]) -> None:
    """Refuse a one-line prompt that is most likely a mistyped subcommand or option.

    ``line`` is the whole line, ``prompt`` its words before the first option the cell knows, and
    ``options`` those options (``--seed`` ...)."""
    _check_order(line, prompt)
    _check_subcommand(line, prompt)
    _check_options(prompt, options)


def _check_order(line: str, prompt: str) -> None:
    """Options written before the prompt (``%yandexart -n 2 a fox``, as a shell command would take
    them), or no prompt at all: the one-liner's prompt comes first, so say the line that way round."""
    if prompt.strip() or not line.strip():
        return
    takes = {name: action.nargs for action in cell_parser()._actions for name in action.option_strings}
    options: list[str] = []
    prose: list[str] = []
    words = split(line)
    index = 0
    while index < len(words):
        word, name = words[index], words[index].partition("=")[0]
        index += 1
        if name not in takes:
            prose.append(word)
            continue
        options.append(word)
        if "=" in word or takes[name] == 0:
            continue
        options.extend(words[index:index + 1])  # its value
        index += 1
        while takes[name] == "+" and index < len(words) and _SEEDS.fullmatch(words[index]):
            options.append(words[index])  # --seed 4 5-6
            index += 1
    meant = f"%yandexart {' '.join(prose) or 'a red fox'} {shlex.join(options)}".strip()
    what = "comes first, then its options" if prose else "is missing"
    raise MagicUsageError(f"a one-line prompt {what}: {meant} (or put the prompt in a %%yandexart cell's body)")


def _check_subcommand(line: str, prompt: str) -> None:
    word, _, rest = line.strip().partition(" ")
    near = closest(word, [*COMMANDS, "help"])
    if near is None:
        return
    meant = f"%yandexart {near}"
    if rest.strip() and near != "help" and _reads_as(near, rest):  # "cancle all", "histroy -n 5"
        raise MagicUsageError(f"{word!r} is not a subcommand: did you mean {meant} {rest.strip()}? (what follows "
                              f"reads as its arguments, not as a prompt; {_IN_A_CELL})")
    if " " not in prompt.strip():  # "%yandexart histroy", "%yandexart pendng --seed 3"
        raise MagicUsageError(f"{word!r} is not a subcommand: did you mean {meant}? (a one-word prompt this close "
                              f"to one is taken for a typo; {_IN_A_CELL})")


def subcommand_or_prompt(error: MagicUsageError, name: str, rest: str) -> MagicUsageError:
    """A subcommand's usage error, saying how to draw the line when it reads as a prompt that
    begins with the subcommand's name (``%yandexart history of rome``)."""
    try:
        words = split(rest)
    except MagicUsageError:
        return error
    if "unrecognized arguments" not in error.message or all(_structured(w) for w in words):
        return error
    return MagicUsageError(f"{error.message} ({name!r} is a subcommand: to draw a prompt that begins with it, put "
                           "the prompt in a %%yandexart cell)")


def _reads_as(command: str, rest: str) -> bool:
    """Whether ``rest`` parses as the subcommand's arguments and has no word of prose: "cancle all"
    is a typo, "cancer cells" a prompt."""
    try:
        words = split(rest)
        COMMANDS[command].parser().parse_args(words)
    except MagicUsageError:
        return False
    return all(_structured(w) for w in words)


def _structured(word: str) -> bool:
    """Whether ``word`` is an argument rather than prose: an option, an id, a number, a file."""
    if word.startswith("-") or _STRUCTURED.fullmatch(word):
        return True
    return Path(word).suffix.lower() in _FILES or ("/" in word and Path(word).exists())


def _check_options(prompt: str, options: set[str]) -> None:
    """A word of the prompt written as an option (``--sead 3``): the option was most likely meant."""
    for word in prompt.split():
        match = _OPTION_LIKE.fullmatch(word)
        if match is None:
            continue
        dashes, name = match.group(1), match.group(2)
        near = closest(f"--{name}", options)
        if dashes == "--" or near:
            hint = f": did you mean {near}?" if near else ""
            raise MagicUsageError(f"{word.partition('=')[0]!r} is not an option of %yandexart{hint} (a word "
                                  f"written as an option is taken for a typo; {_IN_A_CELL})")
