"""Shared fixtures: an emulator on a free loopback port and a client tuned for fast tests."""

from __future__ import annotations

import asyncio
import inspect
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from yart_jupyter.clients import read_policy
from yart_jupyter.clients.client import YandexArtClient
from yart_jupyter.clients.polling import FixedPolicy
from yart_jupyter.clients.shared import close_shared_clients
from yart_jupyter.clients.transport import RetryPolicy
from yart_jupyter.emulator import Duration, Emulator, EmulatorConfig
from yart_jupyter.engine import intents
from yart_jupyter.engine.arrivals import ARRIVALS
from yart_jupyter.notebook.widget import YandexArtForm
from yart_jupyter.store.registry import forget_stores

from .postgres import Cluster

FAST_RETRY = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05, max_elapsed=10.0, max_retry_after=2.0)
KEY = "emulator-key"
FOLDER = "emulator-folder"


def fast_config(**overrides: Any) -> EmulatorConfig:
    """An emulator config whose generations take a tenth of a second."""
    config = EmulatorConfig(duration=Duration("fixed", 0.1), random_seed=7, images_duration=Duration("fixed", 0.2))
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


@pytest.fixture(autouse=True)
def isolated_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own store folder: nothing is written to the user's data directory."""
    home = tmp_path_factory.mktemp("yart-home")
    monkeypatch.setenv("YANDEXART_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def quick_read_schedule(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read at the emulated generations' pace: they take a tenth of a second where the service's
    take 10-20 s, so the product's read schedule counts in tenths of a second (every interval, the
    cold start and the cap alike; ``read_policy.TICK``). Tests marked ``service_clock`` (the
    schedule's own, the bench's simulations) keep seconds."""
    monkeypatch.setattr(read_policy, "TICK", 1.0 if request.node.get_closest_marker("service_clock") else 0.1)


@pytest.fixture(autouse=True)
def fresh_process_notes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notes said once per process are said once per test, and no picture an earlier test's run left
    unseen is taken by this one: each test meets them as a new kernel would."""
    monkeypatch.setattr(intents, "_reuse_said", False)
    ARRIVALS.clear()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster for this test process (started on first use, removed at the end)."""
    cluster = Cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def team_store_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh team store's URL (an empty database); its connections are closed after the test."""
    yield pg_cluster.new_database()
    forget_stores()


@pytest.fixture(params=["local", "team"])
def store_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a store test twice: on the local store (SQLite) and on a team's store (PostgreSQL)."""
    if request.param == "team":
        monkeypatch.setenv("YANDEXART_STORE", request.getfixturevalue("team_store_url"))
    yield request.param


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(fast_config())
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def python_api(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Emulator]:
    """The Python API (``generate``, ``batch`` …) on the emulator, in ``tmp_path``; its shared client
    closed after."""
    from yart_jupyter.core import settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("YC_API_KEY", KEY)
    settings.configure(base_url=emulator.url, folder_id=FOLDER)
    yield emulator
    settings.configure(base_url=None, folder_id=None)
    await close_shared_clients()


@pytest.fixture
def make_client(emulator: Emulator) -> Callable[..., YandexArtClient]:
    """Build clients against the emulator; options override the fast defaults."""

    def make(**options: Any) -> YandexArtClient:
        defaults: dict[str, Any] = dict(
            base_url=emulator.url, api_key=KEY, folder_id=FOLDER, retry=FAST_RETRY,
            poll_policy=FixedPolicy(0.05), request_timeout=5.0, env={},
        )
        defaults.update(options)
        return YandexArtClient(**defaults)

    return make


@pytest.fixture
async def client(make_client: Callable[..., YandexArtClient]) -> AsyncIterator[YandexArtClient]:
    async with make_client() as c:
        yield c


@pytest.fixture(scope="module")
def thread_emulator() -> Iterator[Emulator]:
    emu = Emulator(fast_config())
    emu.start_in_thread()
    yield emu
    emu.stop_thread()


@pytest.fixture
def shell(thread_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[InteractiveShell]:
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    monkeypatch.chdir(tmp_path)
    ip = InteractiveShell.instance()
    ip.run_cell("%load_ext yart_jupyter", store_history=True)
    ip.run_cell(f"%config YandexArt.base_url = {thread_emulator.url!r}")
    thread_emulator.reset()
    thread_emulator.config.duration = Duration("fixed", 0.1)
    thread_emulator.config.images_duration = Duration("fixed", 0.2)
    thread_emulator.config.denied_models = set()
    yield ip
    ip.run_cell("%yandexart cancel all")
    ip.run_cell("%unload_ext yart_jupyter")
    ip.config.pop("YandexArt", None)  # %config values live in the shell's config, which outlives a test


@pytest.fixture
def cli_env(thread_emulator: Emulator, tmp_path: Path, isolated_store: Path) -> Iterator[dict[str, str]]:
    """The environment of a ``yart`` process on the thread emulator and this test's store."""
    thread_emulator.reset()
    thread_emulator.config.duration = Duration("fixed", 0.1)
    thread_emulator.config.denied_models = set()  # a test of the module may have denied one
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YC_", "YANDEXART_"))}
    env.update(YANDEXART_BASE_URL=thread_emulator.url, YC_API_KEY=KEY, YC_FOLDER_ID=FOLDER,
               YANDEXART_HOME=str(isolated_store))
    yield env


@dataclass
class Ran:
    """What a ``yart`` command did: its exit code and what it wrote."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """``yart ARGS`` run in this process (its ``main``, in ``tmp_path``, with :func:`cli_env`): a
    process each costs a Python start; the entry point itself is run as a process elsewhere."""
    from yart_jupyter.cli.main import main

    for name, value in cli_env.items():
        if name.startswith(("YC_", "YANDEXART_")):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("YANDEXART_STORE", raising=False)  # `yart --store URL` sets it: undone after the test
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Ran:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exited:  # argparse's usage errors and --help
            code = exited.code if isinstance(exited.code, int) else 2
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


@pytest.fixture
async def form(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[YandexArtForm]:
    """The form, set up against a fresh emulator; its jobs cancelled and the shared client closed after."""
    monkeypatch.setenv("YANDEXART_BASE_URL", emulator.url)
    monkeypatch.setenv("YC_API_KEY", KEY)
    monkeypatch.setenv("YC_FOLDER_ID", FOLDER)
    monkeypatch.chdir(tmp_path)
    panel = YandexArtForm()
    assert panel._setup_task is not None
    await panel._setup_task
    yield panel
    for job in panel.jobs:
        job.task.cancel()
    await asyncio.gather(*(job.task for job in panel.jobs), return_exceptions=True)
    await close_shared_clients()


@pytest.fixture
def kernel_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder for a notebook run in a real kernel on the embedded emulator, with no credentials from
    the environment (the kernel inherits it)."""
    for key in [k for k in os.environ if k.startswith(("YC_", "YANDEXART_")) and k != "YANDEXART_HOME"]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("YANDEXART_BASE_URL", "emulator")
    monkeypatch.setenv("YANDEXART_EMULATOR_DURATION", "lognormal:0.6:0.3:0.2:1.5")
    monkeypatch.setenv("YANDEXART_EMULATOR_IMAGES_DURATION", "uniform:0.3:0.8")
    return tmp_path


#: The test tiers (pyproject's markers); every test is in exactly one.
TIERS = ("unit", "kernel", "browser", "slow", "soak")
#: What in a test's source means it runs a real kernel or notebook.
KERNEL_USES = re.compile(r"\b(run_notebook|run_cells|start_kernel|execute\(kc)\b")
KERNEL_FIXTURES = {"kernel", "kernel_workdir"}


def tier_of(item: pytest.Item) -> str:
    """A test's tier from what it uses: its own marker if it has one, else the browser file, a soak by
    name, a real kernel (a kernel fixture, or a kernel or notebook started in its body), else unit."""
    own = [mark.name for mark in getattr(item, "own_markers", []) if mark.name in TIERS]
    if own:
        return own[0]
    if item.path.name == "test_browser.py":
        return "browser"
    if "soak" in item.name:
        return "soak"
    function = getattr(item, "function", None)
    source = inspect.getsource(function) if function is not None else ""
    if KERNEL_FIXTURES & set(getattr(item, "fixturenames", ())) or KERNEL_USES.search(source):
        return "kernel"
    return "unit"


def pytest_itemcollected(item: pytest.Item) -> None:
    """Put every test in exactly one tier (``pytest -m unit`` is the inner loop)."""
    item.add_marker(getattr(pytest.mark, tier_of(item)))


@pytest.hookimpl(trylast=True)  # after ``-m`` has chosen the tests
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Spread the long tests (5 s or more alone) over the first quarter of the run. pytest-xdist
    hands each worker a run of consecutive tests from that quarter first, so each worker starts
    with a share of them; in file order a 10 s test handed out late kept one worker busy alone
    for the last 6-8 s of the run."""
    long, rest = [], []
    for item in items:
        (long if item.get_closest_marker("long") or item.get_closest_marker("slow") else rest).append(item)
    if not long:
        return
    step = len(rest) / 4 / len(long)
    ordered: list[pytest.Item] = []
    taken = 0
    for k, item in enumerate(long):
        ordered += rest[taken:int(k * step)]
        taken = max(taken, int(k * step))
        ordered.append(item)
    items[:] = ordered + rest[taken:]


#: (fault, phase, outcome, lost) rows collected by tests/test_faults.py, printed at the end. A test
#: records its row as a user property, which reaches this process from pytest-xdist's workers too.
FAULT_RESULTS: list[tuple[str, str, str, int]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the fault rows the tests recorded (``record_property("fault_row", ...)``)."""
    if report.when == "call":
        FAULT_RESULTS.extend(tuple(value) for name, value in report.user_properties  # type: ignore[misc]
                             if name == "fault_row")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault matrix: faults injected, recovered, failed clearly, lost (must be 0)."""
    if not FAULT_RESULTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fault matrix")
    write(f"{'fault':<48} {'phase':<6} {'outcome':<44} lost")
    for fault, phase, outcome, lost in FAULT_RESULTS:
        write(f"{fault:<48} {phase:<6} {outcome:<44} {lost}")
    matrix = [row for row in FAULT_RESULTS if row[1] != "all"]
    if matrix:
        recovered = sum(1 for row in matrix if row[2] == "recovered")
        clear = sum(1 for row in matrix if row[2].startswith("failed clearly"))
        write(f"matrix: faults injected: {len(matrix)}, recovered: {recovered}, failed clearly: {clear}, "
              f"lost: {sum(row[3] for row in matrix)}")
