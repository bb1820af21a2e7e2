"""The ``yart`` command's options: every command and its arguments, and errors that say which
command or option a typo most likely meant."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..core.status import HISTORY_STATUSES
from ..core.typos import closest, unknown_option_hint
from ..core.units import days, megabytes

MODEL_HELP = ("a catalogue name (aliceai-image-art-3.0, yandex-art/latest: yart models) or a URI; "
              "images:NAME for a model the Images API serves")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors say which command or option a typo most likely meant."""

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        choice = re.search(r"invalid choice: '([^']*)'", message)
        near = closest(choice.group(1), _names(self, choices=True)) if choice else None
        hint = f" (did you mean {near}?)" if near else self._unknown_option(message)
        super().error(message + hint)

    def _unknown_option(self, message: str) -> str:
        """The option of the command given that a typo most likely meant; or, for an option of other
        commands only, which commands take it."""
        commands = _commands(self)
        given = next((word for word in getattr(self, "_argv", []) if word in commands), None)
        if given is None:
            return unknown_option_hint(message, _names(self, choices=False))
        hint = unknown_option_hint(message, _names(commands[given], choices=False))
        if hint:
            return hint
        unknown = [w.partition("=")[0] for w in message.partition("unrecognized arguments:")[2].split()]
        for word in (w for w in unknown if w.startswith("-")):
            others = sorted(name for name, command in commands.items() if word in _names(command, choices=False))
            if others:
                return f" ({word} is an option of yart {' and of yart '.join(others)}, not of yart {given})"
        return ""


def _names(p: argparse.ArgumentParser, choices: bool) -> set[str]:
    """Every subcommand's name (``choices``), or every option any command knows."""
    names: set[str] = set()
    for action in p._actions:
        if not choices:
            names.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            names.update(action.choices if choices else ())
            for child in action.choices.values():
                names.update(_names(child, choices))
    return names


def _commands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parser's commands by name (not their own subcommands: ``store copy`` is ``store``)."""
    return {name: child for action in p._actions if isinstance(action, argparse._SubParsersAction)
            for name, child in action.choices.items()}


def parser() -> argparse.ArgumentParser:
    """The `yart` command line: its commands, their arguments and help."""
    p = _Parser(prog="yart", description="YandexART from a terminal, on the same store and settings as the "
                "notebook (YANDEXART_* and YC_* environment variables).")
    p.add_argument("--store", metavar="URL", help="a team's store: postgresql://user@host/db (default: "
                   "YANDEXART_STORE, else the local store); the password from PGPASSWORD or ~/.pgpass")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    g = sub.add_parser("generate", help="generate a picture (or one per --seed, or --count N) and save it",
                       description="Generate a picture, or one per seed (--seed 1,5-8), or N with random seeds "
                                   "(--count N), and save each.")
    g.add_argument("prompt", help="the prompt, read as a %%%%yandexart cell's body: its lines joined with spaces, "
                   "a line '--- W' starting a message of weight W")
    g.add_argument("--seed", action="append", metavar="N", help="a seed, a range A-B, or several: --seed 1,5-8 "
                   "(or --seed again): a picture each; default: a random one, printed")
    g.add_argument("--aspect", help="W:H or a preset (default: the default_aspect setting)")
    g.add_argument("--mime", help="image/jpeg or image/png")
    g.add_argument("--model", help=MODEL_HELP)
    g.add_argument("-n", "--count", type=int, metavar="N", dest="count",
                   help="N pictures, each with a random seed (on a model without seeds: N samples)")
    g.add_argument("-o", "--out", help="the file to write, or a pattern with {seed}, {n} or {op} (default: "
                   "yandexart-{seed}.jpg); never overwritten")
    g.add_argument("--no-cache", action="store_true",
                   help="generate anew even when the store has this request, or has it on its way")
    g.add_argument("--dry-run", action="store_true", dest="dry_run",
                   help="show every picture it would make, which the store has, and the quota it takes; send nothing")
    rr = sub.add_parser("rerun", help="generate a picture again from its recipe and say whether the pixels match",
                        description="Generate a picture again with the same parameters (from an image file's "
                                    "recipe, a history entry or a recorded operation), save it, and say whether its "
                                    "pixels match the old ones; a generation that failed is sent again.")
    rr.add_argument("source", metavar="PATH|#N|OPERATION_ID", help="an image saved by yart_jupyter, a history entry "
                    "('#1' or 1: the newest, as yart history numbers them) or an operation id")
    rr.add_argument("-o", "--out", help="the file to write, or a pattern with {seed} or {op} (default: the file's "
                    "name with -rerun, else yandexart-{seed}.jpg); never overwritten")
    rr.add_argument("--no-cache", action="store_true", help="generate anew even when the store has this request")
    rr.add_argument("--check", action="store_true", help="generate anew and exit with 1 when the pixels differ "
                    "(0 when identical): a script's reproducibility check; refused, with nothing sent, for a "
                    "model without seeds or with no picture to compare with")
    b = sub.add_parser("batch", help="generate a table of prompts into a dataset folder",
                       description="Every row validated first; resumable: run it again to continue.")
    b.add_argument("table", help="a .csv, .tsv or .jsonl file")
    b.add_argument("--prompt", required=True, help="a template filled from each row: '{subject}, {style}'")
    b.add_argument("--seed", help="a seed for every row, or a column '{seed}' (default: one derived from the row)")
    b.add_argument("--aspect", help="W:H, a preset, or a column '{aspect}'")
    b.add_argument("--mime", help="image/jpeg or image/png")
    b.add_argument("--model", help=MODEL_HELP)
    b.add_argument("--out", required=True, help="file pattern: columns, {n} (the row number) and {seed}, "
                                                 "e.g. 'dataset/{n:05d}.jpg'; metadata.jsonl goes beside")
    b.add_argument("--skip-invalid", action="store_true", help="run the valid rows and list the invalid ones")
    b.add_argument("--resend-lost", action="store_true", dest="resend_lost",
                   help="send again the rows whose Images API request went out and whose answer was lost "
                        "(it may bill them twice)")
    b.add_argument("--dry-run", action="store_true", dest="dry_run",
                   help="say what a run would do with every row and the quota it takes; send nothing")
    h = sub.add_parser("history", help="the latest generations of the store")
    h.add_argument("-n", type=int, default=20, help="how many, newest first (default: 20)")
    h.add_argument("--search", help="only prompts containing this text (any case)")
    h.add_argument("--status", choices=HISTORY_STATUSES, metavar="STATE",
                   help="only generations in this state: " + ", ".join(HISTORY_STATUSES))
    h.add_argument("--team", action="store_true", help="everyone's generations, not only mine")
    h.add_argument("--json", action="store_true", help="one JSON object a line (number, operation_id, status, "
                   "prompt, messages, seed, aspect, model_uri, times, file, error), for scripts")
    pe = sub.add_parser("pending", help="operations started and never collected, and generations never sent")
    pe.add_argument("--team", action="store_true", help="everyone's (a teammate's are collected only by id)")
    s = sub.add_parser("store", help="the store itself: copy one store into another")
    store_commands = s.add_subparsers(dest="store_command", required=True, metavar="STORE_COMMAND")
    c = store_commands.add_parser("copy", help="copy a store's records, sweeps and pictures into another (idempotent)",
                                  description="SRC and DEST: a local store's folder or a postgresql:// URL.")
    c.add_argument("source", metavar="SRC")
    c.add_argument("destination", metavar="DEST")
    r = sub.add_parser("resume", help="collect operations by id, or every pending one with --all")
    r.add_argument("operation_id", nargs="?", help="an operation id (yart pending lists them)")
    r.add_argument("--all", action="store_true",
                   help="every generation of mine still on its way: pending operations, starts never answered")
    r.add_argument("--resend-lost", action="store_true", dest="resend_lost",
                   help="with --all: also send again the Images API requests whose answer was lost (it may bill "
                        "them twice; the service keeps nothing to collect)")
    r.add_argument("-o", "--out", help="save pattern ({seed}, {n}, {op})")
    pr = sub.add_parser("prune", help="delete old records and pictures from the store (pending ones are kept)")
    pr.add_argument("--older-than", type=days, dest="older_than", metavar="DAYS",
                    help="records older than DAYS (30, or with a unit: 12h, 30d, 2w)")
    pr.add_argument("--max-size", type=megabytes, dest="max_size", metavar="MB",
                    help="then the oldest, until the pictures take at most MB (500, or 500MB, 2GB)")
    sub.add_parser("models", help="the models the service serves and what each can do")
    sub.add_parser("status", help="what generations would use (endpoint, folder, credentials redacted, model, "
                                  "store) and what stands in the way; nothing is sent")
    cm = sub.add_parser("compare", help="pictures' parameters side by side, and what differs",
                        description="The parameters of two or more pictures side by side (prompt, weights, seed, "
                                    "aspect, type, model, version, operation, time) and which differ from the "
                                    "first's.")
    cm.add_argument("sources", nargs="+", metavar="A", help="an operation id, a history entry ('#2' or 2, as yart "
                    "history numbers them) or an image file; two or more")
    i = sub.add_parser("info", help="the recipe written into an image file (or a notebook, or a generation of "
                                    "the store)")
    i.add_argument("path", metavar="PATH|#N|OPERATION_ID", help="an image file, a .ipynb, an exported .html, a "
                   "history entry ('#1' or 1: the newest, as yart history numbers them) or an operation id")
    sub.add_parser("emulator", help="run the local emulator (its options as python -m yart_jupyter.emulator: "
                                    "yart emulator --help)", add_help=False)
    return p
