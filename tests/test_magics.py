"""The magics in a real InteractiveShell against an emulator on loopback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from yart_jupyter import errors
from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.engine.jobs import Job
from yart_jupyter.errors import GenerationInterrupted
from yart_jupyter.media.image import GeneratedImage, ImageSet

from .conftest import FOLDER, KEY
from .helpers import html_outputs, run_cell


def test_load_and_unload(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    assert shell.find_cell_magic("yandexart") and shell.find_line_magic("yandexart")
    assert any(getattr(t, "yart", False) for t in shell.input_transformers_cleanup)
    shell.run_cell("%unload_ext yart_jupyter")
    assert shell.find_cell_magic("yandexart") is None and shell.find_line_magic("yandexart") is None
    assert not any(getattr(t, "yart", False) for t in shell.input_transformers_cleanup)
    capsys.readouterr()
    monkeypatch.setenv("YC_FOLDERID", "b1g")  # a mistyped variable is said at load, one line
    shell.run_cell("%load_ext yart_jupyter")
    assert shell.find_cell_magic("yandexart")
    said = capsys.readouterr().err
    assert said == "yart_jupyter: YC_FOLDERID is set but read by nothing (did you mean YC_FOLDER_ID?)\n"


def test_help_documents_every_option(shell: InteractiveShell) -> None:
    doc = shell.find_cell_magic("yandexart").__doc__
    for option in ("--seed", "--count", "--aspect", "--mime", "--model", "--out", "--var", "--background",
                   "--timeout", "--no-cache", "--raw", "resume", "jobs", "cancel", "%config YandexArt", "---"):
        assert option in doc


def test_cell_generates_and_sets_the_value(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    result, captured = run_cell(shell, "%%yandexart --seed 1863 --aspect 2:1\na pattern of\n  pastel succulents")
    assert result.success, result.error_in_exec
    image = shell.user_ns["_"]
    assert isinstance(image, GeneratedImage) and image.seed == 1863 and str(image.aspect) == "2:1"
    assert image.prompt == "a pattern of pastel succulents"
    assert shell.user_ns["Out"][result.execution_count] is image
    outputs = captured.outputs
    assert "YandexART" in outputs[0].data["text/plain"]  # the status line first ...
    assert "<img " in outputs[-1].data["text/html"] and "seed 1863" in outputs[-1].data["text/html"]  # ... replaced
    assert thread_emulator.stats.operations_created == 1


def test_weights_and_variables(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    shell.user_ns["style"] = "ukiyo-e"
    result, _ = run_cell(shell, "%%yandexart --seed 3\n--- 2\nMount Fuji, {style} {{x}}\n--- 0.3\nsoft light")
    assert result.success, result.error_in_exec
    op = thread_emulator.operations[shell.user_ns["_"].operation_id]
    assert op.messages == [{"text": "Mount Fuji, ukiyo-e {x}", "weight": 2.0}, {"text": "soft light", "weight": 0.3}]
    result, _ = run_cell(shell, "%%yandexart --seed 3 --raw\n{style}")
    assert thread_emulator.operations[shell.user_ns["_"].operation_id].messages[0]["text"] == "{style}"


def test_a_mistyped_name_in_the_prompt_says_the_one_meant(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    shell.user_ns["palette"] = "ochre"
    for cell, meant in (("%%yandexart --seed 1\na fox, {palete}", "name 'palete' is not defined (did you mean "
                                                                    "{palette}?)"),
                        ("%%yandexart --seed 1 --vary lighting=dawn|dusk\na fox at {lightning}",
                         "which is neither an axis (lighting) nor a notebook variable (did you mean {lighting}?)"),
                        ("%%yandexart --seed 1 --vary colour={palete}\na fox, {colour}",
                         "cannot evaluate it (NameError: name 'palete' is not defined; did you mean {palette}?)"),
                        ("%%yandexart --seed {my_sede}\na fox", "{my_sede} names no notebook variable")):
        result = shell.run_cell(cell)
        assert meant in str(result.error_in_exec), result.error_in_exec
    assert thread_emulator.stats.requests == 0


def test_line_variables_are_expanded(shell: InteractiveShell) -> None:
    shell.user_ns["my_seed"] = 77
    result, _ = run_cell(shell, "%%yandexart --seed {my_seed}\na tree")
    assert result.success and shell.user_ns["_"].seed == 77


def test_several_seeds_make_a_grid(shell: InteractiveShell) -> None:
    result, captured = run_cell(shell, "%%yandexart --seed 1 4-6 --aspect wide\nfoxes")
    assert result.success, result.error_in_exec
    images = shell.user_ns["_"]
    assert isinstance(images, ImageSet) and [i.seed for i in images] == [1, 4, 5, 6]
    assert captured.outputs[-1].data["text/html"].count("<figure") == 4


def test_count_picks_reported_random_seeds(shell: InteractiveShell) -> None:
    result, _ = run_cell(shell, "%%yandexart --count 3 --aspect tall --mime png\nrain")
    assert result.success, result.error_in_exec
    images = shell.user_ns["_"]
    assert len({i.seed for i in images}) == 3
    assert all(i.mime_type == "image/png" and str(i.aspect) == "9:16" for i in images)


def test_out_and_var(shell: InteractiveShell, tmp_path: Path) -> None:
    result, captured = run_cell(shell, "%%yandexart --seed 21 22 --out pics/tree-{seed}-{n}.jpg --var trees\noak")
    assert result.success, result.error_in_exec
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == ["tree-21-1.jpg", "tree-22-2.jpg"]
    assert [t.seed for t in shell.user_ns["trees"]] == [21, 22]
    assert "saved" in html_outputs(captured)
    run_cell(shell, "%%yandexart --seed 21 --out pics/tree-{seed}-{n}.jpg\noak")
    assert (tmp_path / "pics" / "tree-21-1-2.jpg").exists()  # never overwritten


def test_config_lists_settings(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        shell.run_cell("%config YandexArt")
    for name in ("folder_id", "base_url", "default_aspect", "wait_timeout", "request_timeout", "max_images"):
        assert name in captured.stdout
    shell.run_cell("%config YandexArt.default_aspect = 'banner'")
    run_cell(shell, "%%yandexart --seed 5\nconfigured")
    assert str(shell.user_ns["_"].aspect) == "2:1"
    shell.run_cell("%config YandexArt.default_aspect = '1:1'")


BAD_CELLS = [
    ("%%yandexart --seed 1\n   ", "empty"),
    ("%%yandexart --seed 1\n" + "x" * 501, "at most 500"),
    ("%%yandexart --seed abc\nx", "seed"),
    ("%%yandexart --seed 1 --aspect 0:1\nx", "aspect"),
    ("%%yandexart --seed 1 --aspect cinemascope\nx", "aspect"),
    ("%%yandexart --bogus\nx", "unrecognized arguments"),
    ("%%yandexart --seed 2 --aspct wide\nx", "unrecognized arguments: --aspct wide (did you mean --aspect?)"),
    ("%yandexart history --serch=fox", "(did you mean --search?)"),
    ("%%yandexart --seed 1 --count 2\nx", "either --seed or --count"),
    ("%%yandexart --count 99\nx", "--count"),
    ("%%yandexart --seed 1-40\nx", "at most 16"),
    ("%%yandexart --seed 1 --var 2bad\nx", "--var"),
    ("%%yandexart --seed 1 --mime gif\nx", "mime"),
    ("%%yandexart --seed 1 --out x.png\nx", "ends in .png but the picture is image/jpeg"),
    ("%%yandexart --seed 1 --model art://\nx", "model_uri"),
    ("%%yandexart --seed 1 --timeout -3\nx", "--timeout"),
    ("%%yandexart --seed 1\n{nowhere_defined}", "nowhere_defined"),
    ("%%yandexart --seed 1\na\n--- 0\nb", "weight"),
    ("%%yandexart --seed 1 'unclosed\nx", "cannot read"),
    ("%yandexart resume", "operation_id"),
    ("%yandexart cancel nosuchjob", "no running job"),
    ("%yandexart resume nosuchop --timeout -1", "timeout -1.0 is invalid"),
    ("%yandexart histroy", "did you mean %yandexart history?"),  # a typo of a subcommand spends nothing
    ("%yandexart pendng --seed 3", "did you mean %yandexart pending?"),
    ("%yandexart hlep", "did you mean %yandexart help?"),
    ("%yandexart cancle all", "did you mean %yandexart cancel all?"),  # the rest reads as its arguments
    ("%yandexart histroy -n 5", "did you mean %yandexart history -n 5?"),
    ("%yandexart comapre #1 #2", "did you mean %yandexart compare #1 #2?"),
    ("%yandexart ifno pics/fox.png", "did you mean %yandexart info pics/fox.png?"),
    ("%yandexart a fox --sead 3", "'--sead' is not an option of %yandexart: did you mean --seed?"),
    ("%yandexart a fox -seed=3 --aspect wide", "did you mean --seed?"),
    ("%yandexart a fox --n 3", "'--n' is not an option of %yandexart"),
    ("%yandexart history of rome", "of rome ('history' is a subcommand: to draw a prompt that begins with it, put "
                                   "the prompt in a %%yandexart cell)"),
    ("%yandexart -n 2 a fox", "a one-line prompt comes first, then its options: %yandexart a fox -n 2"),
    ("%yandexart --seed 4 5-6 --vary 'style=ink|oil' a red fox",
     "comes first, then its options: %yandexart a red fox --seed 4 5-6 --vary 'style=ink|oil'"),
    ("%yandexart --dry-run", "a one-line prompt is missing: %yandexart a red fox --dry-run"),
]


def test_one_line_prose_that_only_looks_like_a_typo_is_drawn(shell: InteractiveShell) -> None:
    """Near a subcommand's name but followed by prose, or with dashes that are no option: a prompt."""
    for line, prompt in (("%yandexart cancer cells --seed 3", "cancer cells"),
                         ("%yandexart a fox -- a story - told twice", "a fox -- a story - told twice")):
        result, _ = run_cell(shell, line)
        assert result.success, result.error_in_exec
        assert shell.user_ns["_"].prompt == prompt


@pytest.mark.parametrize("source,needle", BAD_CELLS)
def test_bad_input_is_one_line_and_sends_nothing(
    source: str, needle: str, shell: InteractiveShell, thread_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    result = shell.run_cell(source)
    assert isinstance(result.error_in_exec, errors.YandexArtError), result.error_in_exec
    assert needle in str(result.error_in_exec)
    assert str(result.error_in_exec).lower().count("see %yandexart") <= 1  # one place to look, said once
    printed = capsys.readouterr()
    text = (printed.out + printed.err).strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert thread_emulator.stats.requests == 0


def test_out_into_a_folder(shell: InteractiveShell, tmp_path: Path) -> None:
    """``--out pics/`` (a trailing separator) saves into that folder under generated names; it was
    saved as one file ``pics.jpg``."""
    result, _ = run_cell(shell, "%%yandexart --seed 3 4 --out pics/\na fox")
    assert result.success, result.error_in_exec
    assert sorted(p.name for p in (tmp_path / "pics").iterdir()) == ["yandexart-3.jpg", "yandexart-4.jpg"]
    assert not (tmp_path / "pics.jpg").exists()


def test_out_onto_existing_file_sends_nothing(shell: InteractiveShell, thread_emulator: Emulator,
                                              tmp_path: Path) -> None:
    (tmp_path / "taken.jpg").write_bytes(b"keep me")
    (tmp_path / "folder").mkdir()
    cases = (("taken.jpg", "exists"), ("folder", "is a folder"), ("taken.jpg/sub/x.jpg", "cannot be written"))
    for target, needle in cases:
        result = shell.run_cell(f"%%yandexart --seed 1 --out {target}\nx")
        assert needle in str(result.error_in_exec)
    assert (tmp_path / "taken.jpg").read_bytes() == b"keep me"
    assert thread_emulator.stats.requests == 0


def test_server_errors_are_one_line_with_ids(
    shell: InteractiveShell, thread_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    thread_emulator.inject("fail", "start", message="boom")
    result = shell.run_cell("%%yandexart --seed 1\nfails")
    error = result.error_in_exec
    assert isinstance(error, errors.OperationFailedError) and error.operation_id
    printed = capsys.readouterr().out.strip()
    assert "Traceback" not in printed
    assert printed.splitlines()[-1].startswith("OperationFailedError: ") and error.operation_id in printed
    result = shell.run_cell("%%yandexart --seed 1\nsomething forbidden")
    assert isinstance(result.error_in_exec, errors.ContentModerationError)


def test_partial_failure_shows_the_images_then_raises(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    thread_emulator.inject("fail", "start", message="one broke")
    result, captured = run_cell(shell, "%%yandexart --seed 1 2 3 --var partial\nthree")
    error = result.error_in_exec
    assert isinstance(error, errors.BatchError) and len(error.failures) == 1 and len(error.images) == 2
    assert isinstance(error.failures[0], errors.OperationFailedError)
    assert len(shell.user_ns["partial"]) == 2
    assert captured.outputs[-1].data["text/html"].count("<figure") == 2
    assert "one broke" in captured.outputs[-1].data["text/html"]


def test_timeout_reports_the_operation(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    thread_emulator.config.duration = Duration("fixed", 30)
    result = shell.run_cell("%%yandexart --seed 1 --timeout 0.5\nslow")
    error = result.error_in_exec
    assert isinstance(error, errors.GenerationTimeoutError)
    assert error.operation_id in str(error) and "resume" in str(error)


def test_interrupt_cancels_and_reports(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    thread_emulator.config.duration = Duration("fixed", 30)
    source = """
import asyncio
from yart_jupyter.notebook import magics
_task = asyncio.ensure_future(magics.run_cell("--seed 1 2", "a slow one"))
await asyncio.sleep(1.0)
_task.cancel()
try:
    await _task
except Exception as exc:
    _err = exc
await asyncio.sleep(0.05)  # let cancelled tasks finish unwinding
_left = [t for t in asyncio.all_tasks()
         if t is not asyncio.current_task() and t.get_name() != "yart_jupyter-close-clients"]
"""
    result, _ = run_cell(shell, source)
    assert result.success, result.error_in_exec
    error = shell.user_ns["_err"]
    assert isinstance(error, GenerationInterrupted)
    ids = list(thread_emulator.operations)[-2:]
    assert all(op in str(error) for op in ids) and "resume" in str(error)
    assert shell.user_ns["_left"] == []


def test_background_job(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    thread_emulator.config.duration = Duration("fixed", 0.5)
    result, captured = run_cell(shell, "%%yandexart --background --seed 9\nbackground")
    assert result.success, result.error_in_exec
    job = shell.user_ns["_"]
    assert isinstance(job, Job) and job.state == "running"
    assert "YandexART" in captured.outputs[0].data["text/plain"]
    _, listing = run_cell(shell, "%yandexart jobs")
    assert any(re.search(rf"^{job.id}\s+running", o.data["text/plain"], re.M) for o in listing.outputs)
    result, _ = run_cell(shell, "_img = await _")
    assert result.success and shell.user_ns["_img"].seed == 9
    assert job.state == "done"


def test_background_error_is_shown_in_its_cell(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    thread_emulator.inject("fail", "start", message="bg failure")
    first, captured = run_cell(shell, "%%yandexart --background --seed 9\nbackground")
    assert first.success
    job = shell.user_ns["_"]
    _result, later = run_cell(shell, "import asyncio\nawait asyncio.wait([_.task])")
    assert job.state == "failed"
    assert any("bg failure" in o.data.get("text/html", "") for o in later.outputs + captured.outputs)
    with pytest.raises(errors.OperationFailedError):
        job.result()


def test_cancel_background_job_and_server_operation(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    thread_emulator.config.duration = Duration("fixed", 30)
    run_cell(shell, "%%yandexart --background --seed 9\nlong")
    job = shell.user_ns["_"]
    run_cell(shell, "import asyncio\nawait asyncio.sleep(0.5)")
    op_id = job.status.operation_ids[0]
    _, captured = run_cell(shell, f"%yandexart cancel {job.id}")
    assert job.state == "cancelled"
    assert op_id in captured.outputs[0].data["text/plain"]
    assert thread_emulator.operations[op_id].cancelled


def test_resume(shell: InteractiveShell, thread_emulator: Emulator, tmp_path: Path) -> None:
    run_cell(shell, "%%yandexart --seed 31\nresume me")
    op_id = shell.user_ns["_"].operation_id
    result, _captured = run_cell(shell, f"%yandexart resume {op_id} --out again.jpg --var back")
    assert result.success, result.error_in_exec
    assert shell.user_ns["back"].operation_id == op_id and (tmp_path / "again.jpg").exists()
    result = shell.run_cell("%yandexart resume nosuchoperation00000")
    assert isinstance(result.error_in_exec, errors.OperationNotFoundError)
    from yart_jupyter.store import get_store

    # an id the service never had (a typo) is no generation: it leaves no "expired" line in the history
    assert get_store().get("nosuchoperation00000") is None
    assert [r.operation_id for r in get_store().history(None)] == [op_id]


def test_line_magic_one_liner(shell: InteractiveShell) -> None:
    result, _ = run_cell(shell, "%yandexart a quick red fox --seed 4 --aspect square")
    assert result.success, result.error_in_exec
    assert shell.user_ns["_"].prompt == "a quick red fox" and shell.user_ns["_"].seed == 4
    result, _ = run_cell(shell, "%yandexart lighthouse --seed 5")  # one word, far from every subcommand
    assert result.success and shell.user_ns["_"].prompt == "lighthouse"


def test_sync_fallback_without_the_transformer(shell: InteractiveShell) -> None:
    shell.autoawait = False
    try:
        result, _ = run_cell(shell, "%%yandexart --seed 8\nsync path")
    finally:
        shell.autoawait = True
    assert result.success, result.error_in_exec
    assert shell.user_ns["_"].seed == 8


#: A shell whose async cell (so a loop is running) calls the magic from code, not as a cell; run in a
#: fresh interpreter, because nest_asyncio patches asyncio for the rest of the process it runs in.
NESTED = """
import os, sys
from IPython.core.interactiveshell import InteractiveShell
if sys.argv[1] == "refuse":
    import nest_asyncio
    def refuse(loop=None):
        raise ValueError("Can't patch loop of type <class 'SomeLoop'>")
    nest_asyncio.apply = refuse
ip = InteractiveShell.instance()
ip.run_cell("%load_ext yart_jupyter")
ip.run_cell(f"%config YandexArt.base_url = {os.environ['URL']!r}")
result = ip.run_cell("import asyncio\\nawait asyncio.sleep(0)\\n"
                     "get_ipython().run_cell_magic('yandexart', '--seed 9', 'nested path')")
print("RESULT", "ok" if result.success else f"{type(result.error_in_exec).__name__}: {result.error_in_exec}")
print("SEED", getattr(ip.user_ns.get("_"), "seed", None))
"""


def _nested(emulator: Emulator, tmp_path: Path, mode: str) -> str:
    import os
    import subprocess
    import sys

    env = {**os.environ, "URL": emulator.url, "YC_API_KEY": KEY, "YC_FOLDER_ID": FOLDER,
           "YANDEXART_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", NESTED, mode], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_nested_call_from_a_running_loop(thread_emulator: Emulator, tmp_path: Path) -> None:
    """run_cell_magic from code inside a running loop goes through the nest_asyncio seam."""
    out = _nested(thread_emulator, tmp_path, "nest")
    assert "RESULT ok" in out and "SEED 9" in out, out


def test_seam_that_cannot_nest_says_so_in_one_line(thread_emulator: Emulator, tmp_path: Path) -> None:
    before = thread_emulator.stats.requests
    out = _nested(thread_emulator, tmp_path, "refuse")
    assert "RESULT ConfigurationError: Cannot wait for YandexART from synchronous code" in out, out
    assert thread_emulator.stats.requests == before
