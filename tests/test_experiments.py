"""Experiments: --vary sweeps, their grid, plan, budget guard and store; compare; in a real InteractiveShell."""

from __future__ import annotations

import re
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from yart_jupyter.emulator import Duration, Emulator
from yart_jupyter.engine import ItemEvent
from yart_jupyter.errors import ContentModerationError
from yart_jupyter.experiments.comparison import PARAMETERS, Comparison, resolve, word_diff
from yart_jupyter.experiments.experiment import Experiment
from yart_jupyter.experiments.grid import grid_bundle
from yart_jupyter.experiments.sweep import Axis, SweepError, expand_line, parse_axis
from yart_jupyter.notebook.widget import YandexArtForm
from yart_jupyter.store import get_store

from .helpers import click_and_wait, html_outputs, one_line_error, run_cell, run_cells

SWEEP = '%%yandexart --seed 1-4 --vary style="watercolour|oil painting|pixel art"\na fox in a snowy forest, {style}'


def last_html(captured: Any) -> str:
    return str(captured.outputs[-1].data.get("text/html", "")) if captured.outputs else ""


def test_a_sweep_is_a_labelled_grid_and_an_experiment(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    result, captured = run_cell(shell, SWEEP)
    assert result.success, result.error_in_exec
    exp = shell.user_ns["_"]
    assert isinstance(exp, Experiment) and len(exp) == 12 and exp.shape() == "style 3 × seed 4"
    assert thread_emulator.stats.operations_created == 12
    image = exp["oil painting", 3]
    assert image.seed == 3 and image.prompt == "a fox in a snowy forest, oil painting"
    assert exp["oil painting", "3"] is image  # the seed as text finds it too
    row = exp["pixel art"]
    assert [i.seed for i in row] == [1, 2, 3, 4] and all(i.prompt.endswith("pixel art") for i in row)
    assert len(list(exp)) == 12 and len(exp.images) == 12
    # every style was made with the same four seeds: a column changes one thing only
    assert {(i.prompt.split(", ")[1], i.seed) for i in exp} == {
        (s, n) for s in ("watercolour", "oil painting", "pixel art") for n in (1, 2, 3, 4)}
    page = last_html(captured)
    assert page.count("<img ") == 12 and page.count("a fox in a snowy forest, {style}") == 1
    for label in ("watercolour", "oil painting", "pixel art", ">1<", ">4<", "style \\ seed"):
        assert label in page
    assert len(re.findall(r"<tr>", page)) == 4  # the column labels, then a row per style
    recipes = captured.outputs[-1].metadata["yart_jupyter"]["recipes"]
    assert len(recipes) == 12 and captured.outputs[-1].metadata["yart_jupyter"]["experiment"] == exp.id
    with pytest.raises(KeyError, match="not a value of style"):
        exp["gouache", 1]


def test_records_and_pandas(shell: InteractiveShell) -> None:
    run_cell(shell, '%%yandexart --seed 5 --vary "ar=1:1|16:9" --aspect {ar}\na lighthouse')
    exp = shell.user_ns["_"]
    rows = exp.records()
    assert [r["ar"] for r in rows] == ["1:1", "16:9"] and [r["aspect"] for r in rows] == ["1:1", "16:9"]
    first = rows[0]
    for field in ("experiment", "prompt", "weights", "seed", "aspect", "mime_type", "model_uri", "model_version",
                  "operation_id", "status", "duration", "file"):
        assert field in first
    assert first["status"] == "done" and first["seed"] == 5 and Path(first["file"]).is_file()
    assert exp["16:9", ].size[0] > exp["16:9", ].size[1]
    frame = exp.to_pandas()
    assert list(frame["ar"]) == ["1:1", "16:9"] and frame.shape[0] == 2


def test_weights_are_an_axis(shell: InteractiveShell) -> None:
    cell = '%%yandexart --seed 9{} --vary "w=0.2|0.5|0.8"\na harbour at dusk\n--- {{w}}\noil painting'
    refused, _ = run_cell(shell, cell.format(""))  # weights are documented as unsupported: refused unless asked
    assert not refused.success and "--allow-weights" in str(refused.error_in_exec)
    result, _ = run_cell(shell, cell.format(" --allow-weights"))
    assert result.success, result.error_in_exec
    exp = shell.user_ns["_"]
    assert [img.messages[1].weight for img in exp] == [0.2, 0.5, 0.8]
    assert {img.messages[0].text for img in exp} == {"a harbour at dusk"}


def test_values_from_a_notebook_list_and_other_expressions(shell: InteractiveShell) -> None:
    shell.user_ns.update(styles=["ink", "chalk"], subject="an owl")
    result, _ = run_cell(shell, "%%yandexart --seed 2 --vary style={styles}\n{subject}, {style}")
    assert result.success, result.error_in_exec
    assert [i.prompt for i in shell.user_ns["_"]] == ["an owl, ink", "an owl, chalk"]
    # IPython expands the line, but leaves a sweep's own braces to the sweep
    assert expand_line('--vary s={styles} --aspect {ar} --vary "ar=1:1|2:1" --seed {n}',
                       lambda line: line.replace("{n}", "7")) == \
        '--vary s={styles} --aspect {ar} --vary "ar=1:1|2:1" --seed 7'


def test_dry_run_shows_the_plan_and_sends_nothing(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    run_cell(shell, '%%yandexart --seed 1 --vary "style=ink|chalk"\nan owl, {style}')
    made = thread_emulator.stats.operations_created
    result, captured = run_cell(shell,
        '%%yandexart --seed 1 2 --vary "style=ink|chalk|coal" --dry-run\nan owl, {style}')
    assert result.success, result.error_in_exec
    assert thread_emulator.stats.operations_created == made
    plain = captured.outputs[-1].data["text/plain"]
    assert "an owl, coal" in plain and "6 generations (style 3 × seed 2)" in plain
    assert "2 from the local store for free, 4 to send" in plain  # ink and chalk with seed 1 were made above
    assert "4 of the 500 generations a minute (1 minute of quota)" in plain and "of the 5,000 a day" in plain
    assert "Nothing was sent" in plain
    queued = [r for r in get_store().history(None) if r.status in ("queued", "submitting")]
    assert queued == []
    _, captured = run_cell(shell, "%%yandexart --seed 7 --dry-run\none owl")
    assert "1 generation (seed 1); 0 from the local store" in captured.outputs[-1].data["text/plain"]


def test_the_budget_guard(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    source = '%%yandexart --seed 1-4 --vary "a=1|2|3" --vary "b=x|y"\n{a} {b}'
    result, captured = run_cell(shell, source)
    line = one_line_error(result, captured)
    assert "24 generations (a 3 × b 2 × seed 4)" in line and "the limit is 16" in line
    assert "%config YandexArt.max_images = 24" in line and "--dry-run" in line
    assert thread_emulator.stats.operations_created == 0
    result, captured = run_cell(shell, source.replace("\n", " --dry-run\n", 1))
    assert result.success and "max_images = 24" in captured.outputs[-1].data["text/plain"]
    assert thread_emulator.stats.operations_created == 0


@pytest.mark.parametrize(("source", "expected"), [
    ('--vary "style=ink|chalk"\nan owl, {stlye}', "{stlye}, which is neither an axis (style) nor a notebook"),
    ('--vary "style="\nan owl, {style}', "--vary style: the list of values is empty"),
    ('--vary "style=ink||chalk"\nan owl, {style}', "--vary style: a value is empty"),
    # commas, as --seed 1,5 separates seeds: one picture of "an owl, ink,chalk" otherwise
    ('--vary style=ink,chalk\nan owl, {style}', '--vary style=ink,chalk: separate values with | (style="ink|chalk")'),
    ('--vary "style=ink|chalk" --vary "style=coal"\nan owl, {style}', "--vary style is given twice"),
    ('--vary "ar=1:1|7:1" --aspect {ar}\nan owl', "--vary ar=7:1 makes an invalid request"),
    ('--seed 1 2 --vary "a=1|2" --vary "b=1|2" --vary "c=1|2"\n{a}{b}{c}', "at most 3 axes"),
    ('--vary "style=ink|chalk"\nan owl', "--vary style is not used"),
    ('--vary "seed=1|2"\nan owl {seed}', "the name seed is taken (use --seed for seeds)"),
    ('--vary "style=ink|ink"\nan owl, {style}', "the value 'ink' is given twice"),
    ('--vary "style=ink|chalk" --aspect {ar}\nan owl, {style}', "--aspect mentions {ar}, which is not an axis"),
    ('--vary "w=0.5|-1"\nan owl\n--- {w}\nsnow', "--vary w=-1 makes an invalid request"),
    ('--vary "style=ink|chalk" --out "pics/{seed}.jpg" --seed 1\nan owl, {style}',
     "gives several pictures the same name: add {style} or {n}"),
    ('--vary "style=ink|chalk" --vary "x={nope}"\nan owl, {style} {x}', "--vary x={nope}: cannot evaluate it"),
    # a sweep over models: the model a fixed seed or ratio does not suit is the one named
    ('--seed 1 2 --vary "m=yandex-art/latest|aliceai-image-art-3.0" --model {m}\nan owl',
     "--vary m=aliceai-image-art-3.0 makes an invalid request: seed 1 is invalid: aliceai-image-art-3.0 takes no seed"),
    ('--aspect 3:1 --vary "m=yandex-art/latest|aliceai-image-art-3.0" --model {m}\nan owl',
     "--vary m=aliceai-image-art-3.0 makes an invalid request: aspect '3:1' is invalid"),
    # weights a model does not even send: --allow-weights cannot make the cells differ
    ('--model aliceai-image-art-3.0 --allow-weights --vary "w=0.2|0.8"\nan owl\n--- {w}\nsnow',
     "aliceai-image-art-3.0 takes one prompt without weights: every cell would send the same request"),
])
def test_bad_sweeps_are_one_line_and_send_nothing(
    shell: InteractiveShell, thread_emulator: Emulator, source: str, expected: str,
) -> None:
    result, captured = run_cell(shell, "%%yandexart " + source)
    line = one_line_error(result, captured)
    assert expected in line, line
    assert "Nothing was sent" in line or "invalid" in line
    assert thread_emulator.stats.operations_created == 0
    assert get_store().history(None) == []


def test_out_names_files_by_axis_values(shell: InteractiveShell, tmp_path: Path) -> None:
    result, _ = run_cell(shell, '%%yandexart --seed 3 --vary "style=ink|chalk" --out "sweep/{style}-{seed}.jpg"\n'
                           "an owl, {style}")
    assert result.success, result.error_in_exec
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["chalk-3.jpg", "ink-3.jpg"]
    assert shell.user_ns["_"].records()[1]["file"].endswith("sweep/chalk-3.jpg")


def test_grid_out_draws_a_labelled_contact_sheet(shell: InteractiveShell, tmp_path: Path) -> None:
    from PIL import Image

    result, captured = run_cell(shell, '%%yandexart --seed 1-4 --vary "style=ink|chalk|coal" --grid-out grid.png\n'
                                  "an owl, {style}")
    assert result.success, result.error_in_exec
    assert "grid saved to grid.png" in last_html(captured)
    with Image.open(tmp_path / "grid.png") as sheet:
        width, height = sheet.size
        assert width > 4 * 256 and height > 3 * 256
        gray = sheet.convert("L")
        top = gray.crop((0, 0, width, 60))
        assert top.getextrema()[0] < 80  # the title is drawn in dark ink
        left = gray.crop((0, 120, 90, height))
        assert left.getextrema()[0] < 80  # so are the row labels
    exp = shell.user_ns["_"]
    assert exp.save_grid(tmp_path / "again.jpg").stat().st_size > 10_000
    with pytest.raises(FileExistsError):
        exp.save_grid(tmp_path / "again.jpg")
    result, captured = run_cell(shell,
        '%%yandexart --seed 1 --vary "style=ink|chalk" --grid-out grid.png\nan owl, {style}')
    assert "--grid-out 'grid.png' is invalid: exists already" in one_line_error(result, captured)
    # a sheet is the type its name says (a .webp was a PNG under that name), or refused before anything is sent
    from PIL import Image

    with Image.open(exp.save_grid(tmp_path / "sheet.webp")) as sheet:
        assert sheet.format == "WEBP"
    with pytest.raises(ValueError, match=r"sheet.jpq: a contact sheet is written as the type its name says"):
        exp.save_grid(tmp_path / "sheet.jpq")
    result, captured = run_cell(shell,
        '%%yandexart --seed 1 --vary "style=ink|chalk" --grid-out sheet.jpq\nan owl, {style}')
    assert "--grid-out 'sheet.jpq' is invalid: a contact sheet is written as" in one_line_error(result, captured)
    # a sample axis (a model without seeds) is indexed by its number as well as by its label
    from yart_jupyter.experiments.sweep import Axis

    samples = Axis("sample", ("#1", "#2"))
    assert samples.index(2) == samples.index("#2") == samples.index("2") == 1


def test_a_failed_cell_says_why_and_the_others_arrive(shell: InteractiveShell) -> None:
    result, captured = run_cell(shell, '%%yandexart --seed 1 --vary "mood=calm|forbidden|bright"\na sea, {mood}')
    assert not result.success
    exp = shell.user_ns["_"]
    assert isinstance(exp, Experiment) and len(exp.images) == 2
    assert exp.slot("forbidden", ).state == "failed"
    assert isinstance(exp.slot("forbidden").error, ContentModerationError)
    page = last_html(captured)  # the final grid (earlier outputs are the same grid redrawn as pictures came)
    assert page.count("<img ") == 2 and "yart-slot-failed" in page and "1 of 3 failed" in page
    with pytest.raises(KeyError, match="no picture"):
        exp["forbidden"]


def test_each_cell_shows_its_own_state() -> None:
    axis = Axis("style", ("ink", "chalk", "coal"))
    exp = Experiment("an owl, {style}", [axis], [])
    from yart_jupyter.core.request import build_request
    from yart_jupyter.experiments.experiment import Slot

    exp.slots = [Slot((v,), build_request(f"an owl, {v}", seed=1, model_uri="art://f/yandex-art/latest"))
                 for v in axis.values]
    exp.update(ItemEvent(1, "running", "op-chalk"))
    exp.update(ItemEvent(2, "failed", None, error=ContentModerationError("refused by moderation")))
    page = grid_bundle(exp)["text/html"]
    assert "yart-slot-queued" in page and "generating · op op-chalk" in page and "refused by moderation" in page
    assert exp.counts() == {"queued": 1, "running": 1, "failed": 1}


def test_background_sweep_fills_in(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    result, _ = run_cell(shell,
        '%%yandexart --seed 1 2 --vary "style=ink|chalk" --background --var exp\nan owl, {style}')
    assert result.success, result.error_in_exec
    job = shell.user_ns["_"]
    assert job.state == "running"
    result, _ = run_cell(shell, "_done = await _")
    assert result.success, result.error_in_exec
    exp = shell.user_ns["exp"]
    assert isinstance(exp, Experiment) and len(exp.images) == 4 and shell.user_ns["_done"] is exp


def test_experiments_are_kept_in_the_store(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    run_cell(shell, SWEEP)
    exp = shell.user_ns["_"]
    made = thread_emulator.stats.operations_created
    result, captured = run_cell(shell, "%yandexart history --experiments")
    assert exp.id in captured.outputs[-1].data["text/plain"] and "12 (style 3 × seed 4)" in \
        captured.outputs[-1].data["text/plain"]
    result, captured = run_cell(shell, f"%yandexart history --experiment {exp.id[:8]}")
    assert result.success, result.error_in_exec
    again = shell.user_ns["_"]
    assert isinstance(again, Experiment) and again.id == exp.id and len(again.images) == 12
    assert again["oil painting", 3].operation_id == exp["oil painting", 3].operation_id
    assert html_outputs(captured).count("<img ") == 12
    assert thread_emulator.stats.operations_created == made  # shown from the store, nothing generated
    import yart_jupyter

    assert yart_jupyter.load_experiment(exp.id).shape() == "style 3 × seed 4"
    result, captured = run_cell(shell, "%yandexart history --experiment exp-nothing")
    assert "no experiment 'exp-nothing'" in one_line_error(result, captured)
    # run again: every picture comes from the store, and the new experiment is kept too
    result, captured = run_cell(shell, SWEEP)
    assert thread_emulator.stats.operations_created == made
    assert html_outputs(captured).count("from the store") >= 12
    assert len(get_store().experiments()) == 2


def test_parse_axis_values() -> None:
    assert parse_axis("style = ink | chalk ", {}).values == ("ink", "chalk")
    assert parse_axis("n_steps={range(3)}", {}).values == (0, 1, 2)
    assert parse_axis("w={ws}", {"ws": (0.2, 0.8)}).labels == ("0.2", "0.8")
    with pytest.raises(SweepError, match="needs a list of values, not str"):
        parse_axis("w={ws}", {"ws": "0.2"})
    with pytest.raises(SweepError, match="write NAME=V1"):
        parse_axis("2x=a|b", {})


def test_compare_two_operations(shell: InteractiveShell, tmp_path: Path) -> None:
    run_cell(shell, "%%yandexart --seed 4 --aspect 16:9 --out a.jpg\na red fox in the snow")
    first = shell.user_ns["_"]
    run_cell(shell, "%%yandexart --seed 5\na small red fox in deep snow")
    second = shell.user_ns["_"]
    result, captured = run_cell(shell, f"%yandexart compare {first.operation_id} {second.operation_id}")
    assert result.success, result.error_in_exec
    comparison = shell.user_ns["_"]
    assert isinstance(comparison, Comparison)
    assert set(comparison.differences()) == {"prompt", "seed", "aspect"}
    page = html_outputs(captured)
    assert page.count("<img ") == 2 and page.count("yart-changed") == 3
    assert '<ins style="' in page and ">small</ins>" in page and ">deep</ins>" in page
    printed = repr(comparison).splitlines()  # a terminal's print: the table as text, not an object's address
    assert printed[1] == "prompt\ta red fox in the snow\ta small red fox in deep snow"
    assert printed[-1] == "differs: prompt, seed, aspect"
    assert captured.outputs[-1].data["text/plain"] == repr(comparison)
    # history entries and files name pictures too
    result, captured = run_cell(shell, "%yandexart compare #1 #2 a.jpg")
    assert result.success, result.error_in_exec
    sides = shell.user_ns["_"].sides
    assert [s.label for s in sides] == ["#1", "#2", "a.jpg"]
    assert sides[0].recipe["operation_id"] == second.operation_id
    assert sides[2].recipe["operation_id"] == first.operation_id
    # a picture beside its own file: nothing differs, and the line says why rather than "but the operation"
    result, captured = run_cell(shell, "%yandexart compare #2 a.jpg")
    assert result.success and "differs: nothing: the same picture" in html_outputs(captured)
    result, captured = run_cell(shell, "%yandexart compare #1 nonsense-id")
    assert "is neither an operation id in the store" in one_line_error(result, captured)


def test_compare_says_when_each_picture_of_a_sweep_was_made(shell: InteractiveShell,
                                                            thread_emulator: Emulator) -> None:
    thread_emulator.config.duration = Duration("uniform", 0.1, 1.2)
    result, _ = run_cell(shell, '%%yandexart --seed 1-3 --vary "style=ink|oil"\na fox, {style}')
    assert result.success, result.error_in_exec
    exp = shell.user_ns["_"]
    first, last = sorted(exp, key=lambda image: image.done_at)[::len(exp) - 1]
    assert abs((first.submitted_at - last.submitted_at).total_seconds()) < 0.5  # one sweep: asked for at once
    run_cell(shell, f"%yandexart compare {first.operation_id} {last.operation_id}")
    assert ("finished_at", "made") in PARAMETERS
    made = [side.value("finished_at") for side in shell.user_ns["_"].sides]
    assert made[0] != made[1] and made[0] < made[1]
    assert made[1].startswith(last.done_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
    assert "finished_at" not in shell.user_ns["_"].differences()  # times always differ: not a difference


def test_word_diff() -> None:
    out = word_diff("a red fox in the snow", "a small red fox in snow")
    assert "<ins" in out and ">small</ins>" in out and ">the</del>" in out
    assert word_diff("same words", "same words") == "same words"


async def test_the_form_compares_two_picked_cards(form: YandexArtForm) -> None:
    form.prompt.value = "a lighthouse on a cliff"
    form.count.value = 2
    cards = await click_and_wait(form)
    assert len(cards) == 2
    cards[0].pick.value = True
    assert "one more" in form.comparison.value
    cards[1].pick.value = True
    assert form.comparison.value.count("<img ") == 2 and "yart-changed" in form.comparison.value
    assert "seed" in Comparison([resolve(c.image, None) for c in cards]).differences()
    cards[0].pick.value = False
    assert "<img" not in form.comparison.value


def test_a_third_axis_makes_one_grid_per_value(shell: InteractiveShell, thread_emulator: Emulator) -> None:
    result, captured = run_cell(shell,
        '%%yandexart --seed 1 2 --vary "light=dawn|dusk" --vary "ar=1:1|2:1" --aspect {ar}\n'
                                  "a harbour at {light}")
    assert result.success, result.error_in_exec
    exp = shell.user_ns["_"]
    assert exp.shape() == "light 2 × ar 2 × seed 2" and thread_emulator.stats.operations_created == 8
    assert str(exp["dusk", "2:1", 2].aspect) == "2:1" and exp["dusk", "2:1", 2].prompt == "a harbour at dusk"
    page = last_html(captured)
    assert page.count('class="yart-grid-table"') == 2 and "light = dawn" in page and "light = dusk" in page
    assert page.count("<img ") == 8 and "ar \\ seed" in page


@pytest.mark.timeout(300)
@pytest.mark.long
def test_experiments_in_a_real_kernel(kernel_workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a real kernel (nbclient): a two-axis sweep with a weight axis, a bad sweep (one line, nothing
    sent), the experiment shown again from the store, records as a DataFrame, and the exported HTML."""
    from yart_jupyter.notebook.runner import write_outputs

    monkeypatch.setenv("YANDEXART_EMULATOR_DURATION", "0.3")
    cells = [
        "%load_ext yart_jupyter",
        '%%yandexart --seed 1 2 --allow-weights --vary "w=0.2|0.8" --var exp\na harbour at dusk\n--- {w}\noil painting',
        '%%yandexart --vary "ar=1:1|7:1" --aspect {ar}\na harbour',
        "%yandexart history --experiment {exp.id}",
        "again = _\nagain.id == exp.id, len(again.images), exp.to_pandas().shape, "
        "sorted(r['w'] for r in exp.records())",
    ]
    executed = run_cells(cells, kernel_workdir / "sweep.ipynb", timeout=120, allow_errors=True)
    sweep, bad, shown, checks = executed.cells[1:]
    page = "".join(o.get("data", {}).get("text/html", "") for o in sweep.outputs)
    assert page.count("<img ") == 4 and "w \\ seed" in page and ">0.2<" in page and ">0.8<" in page
    error = next(o for o in bad.outputs if o.output_type == "error")
    assert error.ename == "SweepError" and len(error.traceback) == 1
    assert "--vary ar=7:1 makes an invalid request" in error.evalue and "Nothing was sent" in error.evalue
    assert "".join(o.get("data", {}).get("text/html", "") for o in shown.outputs).count("<img ") == 4
    assert checks.outputs[0]["data"]["text/plain"] == "(True, 4, (4, 15), ['0.2', '0.2', '0.8', '0.8'])"
    _, html_file = write_outputs(executed, kernel_workdir / "out", "sweep")
    exported = html_file.read_text()
    assert exported.count("yart-grid-table") >= 2 and "a harbour at dusk" in exported
