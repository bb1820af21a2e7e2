"""Pictures on their way in this process: a second ask for the same picture waits for the first.

Two runs that ask for the same reproducible request at once (a cell run again while its background
run is still going, two ``generate()`` calls gathered, the form's Generate pressed twice) would each
pay for it. The first run to start it owns its *flight*; a later one joins it and gets the same
picture, or, when the first stopped waiting (a cancel, a timeout), collects its operation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..media.image import GeneratedImage


@dataclass(frozen=True)
class Landing:
    """How a flight ended: its picture, or the operation its start was answered with (``running``
    when it can still be collected: the owner stopped waiting for it, or its wait failed while the
    operation went on) — or neither."""

    image: GeneratedImage | None = None
    operation_id: str | None = None
    running: bool = False


class Flight:
    """One picture being made by a run of this process: the operation id once its start is answered,
    then how it ended. Both are futures of the loop it flies on, resolved by its owner only."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.started: asyncio.Future[str] = loop.create_future()
        self.ended: asyncio.Future[Landing] = loop.create_future()
        #: The operation the owner waits for now (it may start its own after one it tried to collect).
        self.operation_id: str | None = None

    def start(self, operation_id: str) -> None:
        """The owner waits for ``operation_id`` now (its start was answered, or it collects it)."""
        self.operation_id = operation_id
        if not self.started.done():
            self.started.set_result(operation_id)

    def land(self, landing: Landing) -> None:
        if not self.ended.done():
            self.ended.set_result(landing)


class Flights:
    """The flights of the process, by event loop and request key (the store's ``request_key``)."""

    def __init__(self) -> None:
        self._flights: dict[tuple[asyncio.AbstractEventLoop, str], Flight] = {}

    def board(self, key: str) -> tuple[Flight, bool]:
        """The flight of ``key`` on the running loop and whether the caller owns it: a new one is the
        caller's, to :meth:`land` whatever happens; an existing one is another run's, to join."""
        loop = asyncio.get_running_loop()
        flight = self._flights.get((loop, key))
        if flight is not None:
            return flight, False
        flight = self._flights[(loop, key)] = Flight(loop)
        return flight, True

    def land(self, key: str, flight: Flight, landing: Landing) -> None:
        """The owner's flight ended: its joiners are told, and the next ask for ``key`` starts anew."""
        flight.land(landing)
        loop = asyncio.get_running_loop()
        if self._flights.get((loop, key)) is flight:
            del self._flights[(loop, key)]

    def __len__(self) -> int:
        return len(self._flights)


#: The process's flights (every face's runs share them, as they share the store).
FLIGHTS = Flights()
