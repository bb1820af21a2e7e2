"""Sweeps: ``--vary NAME=V1|V2`` axes, their ``{NAME}`` placeholders, and the grid of requests they make.

A sweep is the product of its axes (the seeds are an axis of their own); every combination is one
request, built and validated here before anything is sent, so a bad value is one line naming the
axis and the value. Nothing here knows of IPython or the network.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.errors import InvalidRequestError, RequestValidationError
from ..core.request import GenerationRequest
from ..core.typos import closest_name

#: The most axes a sweep may have, seeds included: rows, columns, and one set of separate grids.
MAX_AXES = 3
#: The name of the seeds' axis (``--seed 1-4``); a ``--vary`` axis may not take it.
SEED_AXIS = "seed"
#: Names a ``--vary`` axis may not take: the seeds' axis and the fields ``--out`` fills in itself.
RESERVED = frozenset({SEED_AXIS, "n", "op"})

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_VARY = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)", re.DOTALL)


class SweepError(InvalidRequestError):
    """A sweep that cannot run as written (an axis, a value, the size); raised before anything is sent."""

    hint = "Nothing was sent"


@dataclass(frozen=True)
class Axis:
    """One thing that varies: its name and its values, in the order given (shown as labels)."""

    name: str
    values: tuple[Any, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(str(value) for value in self.values)

    def index(self, value: Any) -> int:
        """The position of ``value`` on this axis (``3`` and ``"3"`` both find seed 3; ``1`` finds
        sample ``#1``)."""
        for i, known in enumerate(self.values):
            if known == value or str(known) in (str(value), f"#{value}"):
                return i
        raise KeyError(f"{value!r} is not a value of {self.name} ({', '.join(self.labels)})")


def placeholders(text: str | None) -> set[str]:
    """The names of the ``{NAME}`` fields of a text (``{{`` and ``}}`` are literal braces)."""
    if not text:
        return set()
    return {m.group(1) for m in _TOKEN.finditer(text) if m.group(1)}


def fill(text: str, values: Mapping[str, str], *, escape: bool) -> str:
    """Put the axis values into their ``{NAME}`` fields; others are left as they are (notebook
    expressions, expanded later). ``escape``: braces in a value are doubled, so that later
    expansion leaves them literal."""

    def put(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None or name not in values:
            return match.group(0)
        value = values[name]
        return value.replace("{", "{{").replace("}", "}}") if escape else value

    return _TOKEN.sub(put, text)


_VARY_VALUE = re.compile(r"(--vary(?:=|\s+)['\"]?([A-Za-z_][A-Za-z0-9_]*)=)(\{[^}]*\})")


def expand_line(line: str, expand_vars: Callable[[str], str]) -> str:
    """Expand notebook variables in an option line (IPython's ``{x}`` and ``$x``) but leave a sweep's
    own braces alone: each axis' ``{NAME}`` and the ``{list}`` of ``--vary NAME={list}``, which the
    sweep reads itself (as a list, not as its text)."""
    names = re.findall(r"--vary(?:=|\s+)['\"]?([A-Za-z_][A-Za-z0-9_]*)=", line)
    if not names:
        return expand_vars(line)
    kept: dict[str, str] = {}

    def stash(text: str) -> str:
        token = f"\x00{len(kept)}\x00"
        kept[token] = text
        return token

    masked = _VARY_VALUE.sub(lambda m: m.group(1) + stash(m.group(3)), line)
    masked = re.sub(r"\{(" + "|".join(map(re.escape, names)) + r")\}", lambda m: stash(m.group(0)), masked)
    expanded = expand_vars(masked)
    for token, text in kept.items():
        expanded = expanded.replace(token, text)
    return expanded


def parse_axis(definition: str, namespace: Mapping[str, Any]) -> Axis:
    """``style=watercolour|oil painting`` or ``style={styles}`` (a notebook list) → an Axis."""
    match = _VARY.fullmatch(definition)
    if match is None:
        raise SweepError(f"--vary {definition!r}: write NAME=V1|V2|... (NAME a Python-style name)")
    name, raw = match.group(1), match.group(2).strip()
    if name in RESERVED:
        hint = "use --seed for seeds" if name == SEED_AXIS else "--out fills {n} and {op} itself"
        raise SweepError(f"--vary {name}: the name {name} is taken ({hint}); choose another")
    values: list[Any]
    expression = re.fullmatch(r"\{(.+)\}", raw)
    if expression and not re.fullmatch(r"\{.*\}\s*\|.*", raw):
        values = _from_notebook(name, expression.group(1), namespace)
    else:
        values = [part.strip() for part in raw.split("|")] if raw else []
        if any(not value for value in values):
            raise SweepError(f"--vary {name}: a value is empty ({raw!r}); separate values with a single |")
        if len(values) == 1 and "," in raw:  # as --seed 1,5 is written: one picture of the wrong prompt
            listed = "|".join(part.strip() for part in raw.split(","))
            raise SweepError(f"--vary {name}={raw}: separate values with | ({name}=\"{listed}\"); a single value "
                             f"holding a comma comes from a notebook list ({name}={{values}}, values = [{raw!r}])")
    if not values:
        raise SweepError(f"--vary {name}: the list of values is empty")
    seen: set[str] = set()
    for value in values:
        if str(value) in seen:
            raise SweepError(f"--vary {name}: the value {str(value)!r} is given twice (it would be paid twice)")
        seen.add(str(value))
    return Axis(name, tuple(values))


def _from_notebook(name: str, expression: str, namespace: Mapping[str, Any]) -> list[Any]:
    try:
        value = eval(expression, dict(namespace))
    except Exception as exc:
        near = closest_name(exc.name, namespace) if isinstance(exc, NameError) and exc.name else None
        meant = f"; did you mean {{{near}}}?" if near else ""
        raise SweepError(f"--vary {name}={{{expression}}}: cannot evaluate it ({type(exc).__name__}: {exc}{meant})") \
            from None
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
        raise SweepError(f"--vary {name}={{{expression}}}: needs a list of values, not {type(value).__name__}")
    values = list(value)
    for item in values:
        if not isinstance(item, (str, int, float)) or isinstance(item, bool):
            raise SweepError(f"--vary {name}={{{expression}}}: values must be text or numbers, "
                             f"not {type(item).__name__}")
    return values


@dataclass(frozen=True)
class Template:
    """What a sweep fills in: the cell body and the options that may hold ``{NAME}`` fields."""

    body: str
    options: Mapping[str, str | None]
    seeds: Sequence[int | str | None]
    raw: bool = False
    #: The seeds' axis: ``seed``, or ``sample`` (#1…#N) on a model without seeds.
    seed_axis: str = SEED_AXIS

    def uses(self) -> dict[str, set[str]]:
        """For each field (``prompt``, ``--aspect``, ...), the axis names it mentions."""
        found = {"prompt": set() if self.raw else placeholders(self.body)}
        found.update({name: placeholders(value) for name, value in self.options.items()})
        return found


#: Builds one request from a filled-in body and filled-in options (the face's settings decide defaults).
Builder = Callable[[str, Mapping[str, str | None], "int | None"], GenerationRequest]


@dataclass(frozen=True)
class Cell:
    """One combination of a sweep: its axis values (in axis order) and its request."""

    key: tuple[Any, ...]
    request: GenerationRequest


class Sweep:
    """Axes (the seeds last, when there are several) and the validated request of each combination."""

    def __init__(self, axes: Sequence[Axis], cells: Sequence[Cell], template: Template) -> None:
        self.axes = list(axes)
        self.cells = list(cells)
        self.template = template

    @property
    def size(self) -> int:
        return len(self.cells)

    def shape(self) -> str:
        """``style 3 × seed 4``."""
        return " × ".join(f"{axis.name} {len(axis.values)}" for axis in self.axes) or "1"

    def title(self) -> str:
        """The fixed part of the prompt, with each axis shown as its ``{NAME}``."""
        return " ".join(self.template.body.split())

    def __iter__(self) -> Iterator[Cell]:
        return iter(self.cells)


def check_axes(axes: Sequence[Axis], template: Template) -> None:
    """Refuse duplicate axes, too many of them, and an axis that no field uses; and name an unknown
    ``{NAME}`` in an option (the body's unknown names may still be notebook variables)."""
    names = [axis.name for axis in axes]
    for name in names:
        if names.count(name) > 1:
            raise SweepError(f"--vary {name} is given twice; give each axis once, with all its values")
    seeds_vary = len(template.seeds) > 1
    total = len(axes) + (1 if seeds_vary else 0)
    if total > MAX_AXES:
        listed = ", ".join(names + ([template.seed_axis] if seeds_vary else []))
        raise SweepError(f"a sweep has at most {MAX_AXES} axes (seeds count as one); this one has {total}: {listed}")
    uses = template.uses()
    for name in names:
        if not any(name in used for used in uses.values()):
            raise SweepError(f"--vary {name} is not used: put {{{name}}} in the prompt or in an option "
                             "(otherwise each of its values makes the same picture)")
    for option, used in uses.items():
        if option == "prompt" or option == "--out":
            continue
        unknown = sorted(used - set(names))
        if unknown:
            known = ", ".join(names) or "none"
            raise SweepError(f"{option} mentions {{{unknown[0]}}}, which is not an axis (axes: {known})")


def expand(axes: Sequence[Axis], template: Template, build: Builder) -> Sweep:
    """Every combination's request, in axis order (the seeds' axis varies fastest); a value that
    makes an invalid request is one error naming the axis and the value."""
    check_axes(axes, template)
    all_axes = list(axes)
    if len(template.seeds) > 1:
        all_axes.append(Axis(template.seed_axis, tuple(template.seeds)))
    uses = template.uses()
    cells = []
    for combo in itertools.product(*(axis.values for axis in all_axes)):
        values = {axis.name: str(value) for axis, value in zip(all_axes, combo, strict=True)}
        seed = values.pop(template.seed_axis, None)
        if template.seed_axis != SEED_AXIS:  # samples of a model without seeds: no seed is sent
            seed = None
        body = template.body if template.raw else fill(template.body, values, escape=True)
        options = {name: fill(value, values, escape=False) if value is not None else None
                   for name, value in template.options.items()}
        try:
            first = template.seeds[0] if template.seed_axis == SEED_AXIS else None
            request = build(body, options, int(seed) if seed is not None else first)  # type: ignore[arg-type]
        except RequestValidationError as exc:
            raise _blame(exc, values, uses) from None
        cells.append(Cell(tuple(combo), request))
    return Sweep(all_axes, cells, template)


_FIELDS = {"prompt": "prompt", "weight": "prompt", "aspect": "--aspect", "mime_type": "--mime",
           "model_uri": "--model", "seed": "--seed"}


def _blame(error: RequestValidationError, values: Mapping[str, str], uses: Mapping[str, set[str]]) -> Exception:
    """An invalid request of one combination, said as the axis value that made it: the field's own
    axes, and a model axis whose model the reason names (its seeds or ratios: a sweep over models)."""
    field = _FIELDS.get(error.field)
    involved = [name for name in values if field is not None and name in uses.get(field, set())]
    involved += [name for name in values if name in uses.get("--model", set()) and name not in involved
                 and values[name] and values[name] in error.message]
    if not involved:
        return error
    which = ", ".join(f"{name}={values[name]}" for name in involved)
    return SweepError(f"--vary {which} makes an invalid request: {error.message}")

