"""HTTP sessions: closed when the loop ends, one per client even when first calls race."""


import subprocess
import sys
import textwrap
from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell

from yart_jupyter.clients.shared import _clients
from yart_jupyter.emulator import Emulator

from .conftest import FOLDER, KEY
from .helpers import run_cell


def _script(emulator: Emulator, tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(f"""
        import asyncio, gc, os, warnings
        warnings.simplefilter("always")
        os.environ.update(YC_API_KEY={KEY!r}, YC_FOLDER_ID={FOLDER!r}, YANDEXART_BASE_URL={emulator.url!r},
                          YANDEXART_HOME={str(tmp_path / 'home')!r})
        import yart_jupyter
        {body}
        gc.collect()
    """)
    return subprocess.run([sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, timeout=60)


def test_plain_script_leaks_no_session(thread_emulator: Emulator, tmp_path: Path) -> None:
    result = _script(thread_emulator, tmp_path, textwrap.dedent("""
        async def main():
            return await yart_jupyter.generate("a cat", seed=1)
        print(asyncio.run(main()).operation_id)
    """).replace("\n", "\n        "))
    assert result.returncode == 0, result.stderr
    assert "Unclosed" not in result.stderr and "unclosed" not in result.stderr, result.stderr


def test_concurrent_first_calls_open_one_session(thread_emulator: Emulator, tmp_path: Path) -> None:
    result = _script(thread_emulator, tmp_path, textwrap.dedent("""
        import aiohttp
        opened = []
        original = aiohttp.ClientSession.__init__
        def counting(self, *a, **k):
            opened.append(self)
            original(self, *a, **k)
        aiohttp.ClientSession.__init__ = counting
        async def main():
            await asyncio.gather(*(yart_jupyter.generate("a cat", seed=s) for s in range(1, 6)))
        asyncio.run(main())
        print("sessions", len(opened))
    """).replace("\n", "\n        "))
    assert result.returncode == 0, result.stderr
    assert "sessions 1" in result.stdout, result.stdout
    assert "Unclosed" not in result.stderr, result.stderr


def test_first_cell_with_several_seeds_opens_one_session(shell: InteractiveShell) -> None:
    from IPython.core.async_helpers import get_asyncio_loop

    shell.run_cell("from yart_jupyter.clients.shared import close_shared_clients\nawait close_shared_clients()")
    run_cell(shell, "%%yandexart --seed 1-4\nfour at once")
    clients = list(_clients[get_asyncio_loop()].values())  # type: ignore[no-untyped-call]
    assert len(clients) == 1 and clients[0].connection.is_open
