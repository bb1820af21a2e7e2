"""``%yandexart history [-n N] [--search TEXT] [--team] [--experiments] [--experiment ID]``: the store's
latest generations as thumbnails (mine, or with ``--team`` everyone's), its sweeps, or one sweep shown
again as its grid."""

from __future__ import annotations

import asyncio
from argparse import Namespace

from ...core import errors
from ...core.status import HISTORY_STATUSES
from .face import Face
from .parsers import Parser


def parser() -> Parser:
    p = Parser("%yandexart history", "Show my latest generations in the store (--team: everyone's), newest first "
                                     "(numbered #1 newest, as compare, rerun and info take them), or its sweeps.")
    p.add_argument("-n", type=int, default=20, metavar="N", help="how many (default 20)")
    p.add_argument("--search", metavar="TEXT", help="only prompts containing TEXT (case-insensitive)")
    p.add_argument("--status", choices=HISTORY_STATUSES, metavar="STATE",
                   help="only generations in this state: " + ", ".join(HISTORY_STATUSES) + " (--status failed: "
                        "what went wrong, each saying why)")
    p.add_argument("--experiments", action="store_true", help="list the sweeps (--vary cells) instead")
    p.add_argument("--experiment", metavar="ID", help="show one sweep again as its grid (a prefix of its id will do)")
    p.add_argument("--team", action="store_true", help="everyone's generations (a team's store), not only mine")
    return p


async def handle(face: Face, options: Namespace) -> None:
    from ...present.html import message_bundle
    from ...present.records import filter_words, history_bundle

    store = face.store()
    if options.experiment:
        from ...experiments.experiment import Experiment

        try:
            experiment = await asyncio.to_thread(Experiment.load, store, options.experiment)
        except LookupError as exc:
            raise errors.MagicUsageError(str(exc).strip("'\""), hint="") from None
        face.display(experiment)
        face.set_result(experiment)
        return
    if options.experiments:
        from ...present.records import experiments_bundle

        found = await asyncio.to_thread(store.experiments, options.n)
        face.show(experiments_bundle(found) if found else message_bundle("No sweeps recorded yet."))
        return
    records = await asyncio.to_thread(store.history, options.n, options.search, options.status, team=options.team)
    if not records:
        asked = filter_words(options.search, options.status)
        face.show(message_bundle(f"No generation matches {asked}." if asked else "No generations recorded yet."))
        return
    thumbs, numbers = await asyncio.to_thread(lambda: ([store.thumbnail(r) for r in records], store.numbers(records)))
    face.show(history_bundle(records, thumbs, numbers))
