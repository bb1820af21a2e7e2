"""The form and a background cell in a real JupyterLab, driven by Playwright in Debian's chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tokenize
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def output_glyphs() -> set[str]:
    """Every non-ASCII character in the package's string literals: what outputs may show."""
    glyphs = set()
    for path in (ROOT / "yart_jupyter").rglob("*.py"):
        if "emulator" in path.parts:
            continue
        with path.open("rb") as handle:
            for token in tokenize.tokenize(handle.readline):
                if token.type == tokenize.STRING:
                    glyphs.update(ch for ch in token.string if ord(ch) > 127)
    return glyphs


#: Draws each glyph on a canvas in a font, and reports those drawn as the missing-glyph box (the
#: drawing of unassigned code points) or as nothing.
MISSING_GLYPHS_JS = """
([glyphs, fonts]) => {
  const canvas = document.createElement('canvas'); canvas.width = 48; canvas.height = 48;
  const ctx = canvas.getContext('2d');
  const draw = (ch, font) => {
    ctx.clearRect(0, 0, 48, 48); ctx.font = font; ctx.fillStyle = '#000'; ctx.fillText(ch, 6, 34);
    return ctx.getImageData(0, 0, 48, 48).data.join(',');
  };
  const missing = [];
  for (const font of fonts) {
    const boxes = [draw('\u0378', font), draw('\u0379', font)];
    const blank = draw(' ', font);
    for (const ch of glyphs) {
      const drawn = draw(ch, font);
      if (boxes.includes(drawn) || drawn === blank) missing.push(ch + ' in ' + font);
    }
  }
  return missing;
}
"""


def run_all(page: Any, started: Callable[[], None], screenshot: str) -> None:
    """Lab's Run > Run All until ``started`` passes. A click that lands while Lab is still settling can
    be lost, or run in the kernel for a notebook view Lab then replaces (the files appear, the cells
    stay ``[ ]``): each retry reloads the page, waits for the kernel to go idle, and clicks again."""
    for attempt in range(3):
        if attempt:
            page.screenshot(path=str(ARTIFACTS / screenshot.replace(".png", f"-{attempt}.png")))
            page.goto(page.url.split("?")[0])  # the same notebook, without resetting the workspace again
            page.wait_for_selector("#jp-main-statusbar >> text=/Idle/", timeout=120_000)
        page.click(".jp-Notebook >> visible=true")
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
        try:
            started()
            return
        except AssertionError as error:
            why = str(error).splitlines()[:3]
    page.screenshot(path=str(ARTIFACTS / screenshot))
    raise AssertionError(f"Run All never showed the notebook running (see test-artifacts/{screenshot}): {why}")


def use_theme(page: Any, theme: str) -> None:
    """Lab's light or dark theme through Settings > Theme (a no-op when it is already on)."""
    light = "true" if theme == "light" else "false"
    if page.locator(f"body[data-jp-theme-light='{light}']").count():
        return
    page.click(".lm-MenuBar-itemLabel:text-is('Settings')")
    page.hover("li.lm-Menu-item:has-text('Theme')")
    label = "JupyterLab Light" if theme == "light" else "JupyterLab Dark"
    page.click(f"li.lm-Menu-item[data-command='apputils:change-theme']:has-text('{label}')")
    page.wait_for_selector(f"body[data-jp-theme-light='{light}']", state="attached", timeout=30_000)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """JupyterLab on loopback, with its own config, serving a copy of the notebooks."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    shutil.copytree(ROOT / "notebooks", root)
    settings = base / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YC_", "YANDEXART_"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTERLAB_SETTINGS_DIR=str(base / "settings"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"), YANDEXART_BASE_URL="emulator",
        YANDEXART_HOME=str(base / "store"), YANDEXART_EMULATOR_DURATION="1.5",
        YANDEXART_EMULATOR_IMAGES_DURATION="1.5",
    )
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root",
        f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
    ]
    log = (base / "lab.log").open("w")
    with subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT) as server:
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"JupyterLab did not start; see {base / 'lab.log'}")
                time.sleep(0.3)
            yield url, root
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()


@pytest.mark.timeout(360)
def test_form_and_background_cell_in_jupyterlab(lab: tuple[str, Path]) -> None:
    from playwright.sync_api import expect, sync_playwright

    lab_url, root = lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2200})
            page.goto(f"{lab_url}/lab/tree/widget.ipynb")
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
            page.wait_for_selector("#jp-main-statusbar >> text=/Idle/", timeout=60_000)
            form = page.locator(".yart-form")
            run_all(page, lambda: expect(page.locator(".jp-CodeCell .jp-InputPrompt").first).to_have_text(
                re.compile(r"\[(\*|\d+)\]"), timeout=10_000), "run-all-retry.png")
            expect(form).to_be_visible(timeout=60_000)
            expect(form.locator(".widget-html").first).to_contain_text("YandexART")
            expect(form).to_contain_text("the embedded emulator", timeout=30_000)
            generate = form.locator("button.jupyter-button:has-text('Generate')")
            expect(generate).to_be_disabled()  # an empty prompt says why
            expect(form).to_contain_text("empty")

            form.locator("textarea").first.fill("a lighthouse on a cliff at dawn, oil painting")
            form.locator("input[placeholder='random']").fill("1234")
            form.locator(".widget-checkbox input").check()
            expect(form).to_contain_text("45/500")
            expect(generate).to_be_enabled()
            generate.click()

            card = form.locator(".yart-card").first
            expect(card.locator("img")).to_be_visible(timeout=60_000)
            expect(card).to_contain_text("seed 1234")
            expect(card).to_contain_text("a lighthouse on a cliff")

            generate.click()  # the same seed and prompt again: from the local store
            expect(form.locator(".yart-job")).to_have_count(2, timeout=30_000)
            expect(form.locator(".yart-job").first.locator(".yart-card")).to_contain_text("cached", timeout=30_000)

            # The --background cell: its late result replaced the status line in its own cell.
            cells = page.locator(".jp-CodeCell")
            background = cells.filter(has_text="--background")
            expect(background.locator(".yart-result img")).to_be_visible(timeout=60_000)
            expect(background.locator(".yart-result")).to_contain_text("seed 2024")
            expect(cells.filter(has_text="%yandexart jobs").locator(".jp-OutputArea-output")).to_contain_text(
                "j1", timeout=30_000
            )

            # The notebook embeds a preview; one click shows the service's full picture, another hides it.
            expect(background.locator(".yart-result")).to_contain_text("preview")
            full_size = background.locator(".yart-full-size button:has-text('full size')")
            expect(full_size).to_be_visible(timeout=30_000)
            full_size.click()
            full = background.locator(".yart-full-size img")
            expect(full).to_be_visible(timeout=10_000)
            width, height = (int(n) for n in re.search(r"(\d+)×(\d+) ·", background.locator(
                ".yart-result figcaption").inner_text()).groups())
            page.wait_for_function("img => img.naturalWidth > 0", arg=full.element_handle())
            assert full.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [width, height]
            background.screenshot(path=str(ARTIFACTS / "full-size.png"))
            full_size.click()
            expect(full).to_be_hidden()

            # The live form hides its static copy; the saved notebook keeps it for a reopening.
            copy = page.locator(".yart-static-copy")
            expect(copy).to_have_count(1, timeout=30_000)
            expect(copy).to_be_hidden()
            page.click(".jp-Notebook")
            page.keyboard.press("Control+s")
            saved = root / "widget.ipynb"
            deadline = time.monotonic() + 30
            while "yart-static-copy" not in saved.read_text() and time.monotonic() < deadline:
                time.sleep(0.3)
            form_cell = next(c for c in json.loads(saved.read_text())["cells"] if "yart_jupyter.form()" in
                             "".join(c["source"]))
            static = "".join("".join(o.get("data", {}).get("text/html", "")) for o in form_cell["outputs"])
            assert "yart-static-copy" in static and "seed 1234" in static and static.count("<img") == 2

            # Alice AI ART, chosen in the form: the seed field is off and says why; the picture has no seed.
            from yart_jupyter.core.models import API_NAMES, CATALOGUE, LIVING_MODEL

            alice = CATALOGUE[LIVING_MODEL]
            form.locator(".widget-dropdown:has-text('Model') select").select_option(
                label=f"{alice.name} · {API_NAMES[alice.api]} · no seed")
            expect(form.locator("input[placeholder='no seed']")).to_be_disabled()
            expect(form).to_contain_text("takes no seed")
            generate.click()
            expect(form.locator(".yart-job")).to_have_count(3, timeout=30_000)
            alice_card = form.locator(".yart-job").first.locator(".yart-card")
            expect(alice_card.locator("img")).to_be_visible(timeout=60_000)
            expect(alice_card).to_contain_text("no seed")
            expect(alice_card).not_to_contain_text("seed 1234")
            form.screenshot(path=str(ARTIFACTS / "form-alice.png"))

            # Every symbol outputs use renders in JupyterLab's fonts (the hourglass did not: the check
            # must flag it, or it could not fail).
            fonts = ["12px monospace", "13px " + page.evaluate("getComputedStyle(document.body).fontFamily")]
            glyphs = sorted(output_glyphs())
            assert page.evaluate(MISSING_GLYPHS_JS, [glyphs, fonts]) == []
            assert page.evaluate(MISSING_GLYPHS_JS, [["\u23f3"], fonts[:1]]) != []

            form.screenshot(path=str(ARTIFACTS / "form.png"))
            page.screenshot(path=str(ARTIFACTS / "widget-notebook.png"), full_page=True)
        finally:
            browser.close()
    assert (ARTIFACTS / "form.png").stat().st_size > 10_000


#: The contrast ratio (WCAG) of an element's text against the first opaque background behind it.
CONTRAST_JS = """
(el) => {
  const rgb = (s) => s.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  let node = el, background = null;
  while (node && node.nodeType === 1) {
    const c = rgb(getComputedStyle(node).backgroundColor);
    if (c.length < 4 || c[3] > 0.5) { background = c; break; }
    node = node.parentElement;
  }
  background = background || [255, 255, 255];
  const a = lum(rgb(getComputedStyle(el).color)), b = lum(background);
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}
"""


@pytest.mark.timeout(360)
def test_sweep_grid_in_light_and_dark_themes(lab: tuple[str, Path]) -> None:
    """A 3 × 4 sweep fills in its labelled grid in JupyterLab; its labels read well in both themes."""
    from playwright.sync_api import expect, sync_playwright

    lab_url, root = lab
    ARTIFACTS.mkdir(exist_ok=True)
    source = ('%%yandexart --seed 1-4 --vary style="watercolour|oil painting|pixel art"\n'
              "a fox in a snowy forest, {style}")
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": s}
             for s in ("%load_ext yart_jupyter", source)]
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    (root / "sweep.ipynb").write_text(json.dumps({"cells": cells, "metadata": kernel, "nbformat": 4,
                                                  "nbformat_minor": 5}))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(f"{lab_url}/lab/tree/sweep.ipynb?reset")  # not the workspace the other test left
            page.wait_for_selector("#jp-main-statusbar >> text=/Idle/", timeout=60_000)
            grid = page.locator(".yart-grid")
            run_all(page, lambda: expect(grid).to_be_visible(timeout=20_000), "sweep-retry.png")
            expect(grid.locator("img")).to_have_count(12, timeout=60_000)
            table = grid.locator("table.yart-grid-table")
            expect(table.locator("tr")).to_have_count(4)
            expect(table.locator("tr").first.locator("th")).to_have_count(5)  # the corner, then seeds 1-4
            for label in ("watercolour", "oil painting", "pixel art"):
                expect(table.locator("th", has_text=label)).to_have_count(1)
            expect(grid.locator(".yart-grid-title")).to_have_text("a fox in a snowy forest, {style}")
            for theme in ("light", "dark"):
                if theme == "dark":
                    use_theme(page, "dark")
                    page.wait_for_timeout(500)
                for selector in (".yart-grid-title", "table.yart-grid-table th >> nth=2",
                                 "table.yart-grid-table tr >> nth=1 >> th"):
                    ratio = page.locator(f".yart-grid {selector}").first.evaluate(CONTRAST_JS)
                    assert ratio >= 4.5, (theme, selector, ratio)
                grid.screenshot(path=str(ARTIFACTS / f"sweep-grid-{theme}.png"))
        finally:
            browser.close()
    assert (ARTIFACTS / "sweep-grid-dark.png").stat().st_size > 20_000


#: The docs' pictures: one notebook of the outputs the pages describe, shot in JupyterLab in both
#: themes. ``make screenshots`` writes them into docs/images; the test suite into test-artifacts.
SHOTS = Path(os.environ.get("YART_SCREENSHOTS") or ARTIFACTS / "docs-images")
TOUR = [
    "%load_ext yart_jupyter\nimport yart_jupyter\nfrom yart_jupyter.emulator import Duration, embedded",
    "%%yandexart --seed 1863 --aspect 2:1\na pattern of pastel colored succulents, top view",
    'embedded().config.duration = Duration("uniform", 3.0, 15.0)',
    "%%yandexart --seed 1-6 --no-cache\na harbour at dusk, long exposure",
    'embedded().config.duration = Duration("fixed", 1.0)',
    '%%yandexart --seed 1-4 --vary style="watercolour|oil painting|pixel art" --dry-run\n'
    "a fox in a snowy forest, {style}",
    '%%yandexart --seed 1-4 --vary style="watercolour|oil painting|pixel art" --var exp\n'
    "a fox in a snowy forest, {style}",
    'first, second = exp["watercolour", 1].operation_id, exp["pixel art", 2].operation_id\n'
    "%yandexart compare {first} {second}",
    "%%yandexart --seed 5 --aspect 4:3 --out red-fox.jpg\na red fox in the snow",
    "%yandexart info red-fox.jpg",
    "rows = [{'subject': s, 'style': t} for s in ('a fox', 'an owl', 'a heron') for t in ('ink', 'chalk')]\n"
    "result = await yart_jupyter.batch(rows, prompt='{subject}, {style}', out='dataset/{n:03d}.jpg')",
    "yart_jupyter.form()",
]


@pytest.mark.timeout(480)
def test_the_docs_pictures_in_light_and_dark(lab: tuple[str, Path]) -> None:
    """Every output the docs describe, shot where users see it: the magic's picture and caption, the
    progress bar mid-run, the dry-run plan, a sweep grid, compare, info, a batch's table, the form."""
    from playwright.sync_api import expect, sync_playwright

    lab_url, root = lab
    ARTIFACTS.mkdir(exist_ok=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": s}
             for s in TOUR]
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    (root / "tour.ipynb").write_text(json.dumps({"cells": cells, "metadata": kernel, "nbformat": 4,
                                                 "nbformat_minor": 5}))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400}, device_scale_factor=1)
            page.goto(f"{lab_url}/lab/tree/tour.ipynb?reset")
            page.wait_for_selector("#jp-main-statusbar >> text=/Idle/", timeout=60_000)

            def cell(index: int) -> Any:
                return page.locator(".jp-Notebook .jp-CodeCell").nth(index)

            def output(index: int) -> Any:
                return cell(index).locator(".jp-OutputArea")

            def shoot(name: str, target: Any, theme: str) -> None:
                target.scroll_into_view_if_needed()
                target.screenshot(path=str(SHOTS / f"{name}-{theme}.jpg"), type="jpeg", quality=85)

            def progress(theme: str) -> None:  # the slow cell mid-run: some pictures in, some running
                bar = output(3).locator(".yart-bar")
                try:
                    expect(bar).to_be_visible(timeout=60_000)
                except AssertionError:
                    page.screenshot(path=str(ARTIFACTS / f"tour-{theme}-failed.png"), full_page=True)
                    raise
                expect(output(3)).to_contain_text(re.compile(r"\b[1-5]/6 done"), timeout=60_000)
                shoot("progress", output(3), theme)

            use_theme(page, "light")  # the sweep test may have left Lab dark
            # .first: the picture, then the full-size button's (empty) image widget
            run_all(page, lambda: expect(output(1).locator("img").first).to_be_visible(timeout=30_000),
                    "tour-retry.png")
            progress("light")
            form = page.locator(".yart-form")
            expect(form).to_be_visible(timeout=120_000)
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_attached(
                timeout=60_000)
            form.locator("textarea").first.fill("a grey heron in the reeds, morning mist")
            form.locator("input[placeholder='random']").fill("42")
            form.locator("button.jupyter-button:has-text('Generate')").click()
            expect(form.locator(".yart-card img").first).to_be_visible(timeout=60_000)
            expect(output(6).locator(".yart-grid img")).to_have_count(12, timeout=60_000)
            expect(output(10).locator(".yart-batch-result")).to_be_visible(timeout=60_000)
            for theme in ("light", "dark"):
                if theme == "dark":
                    use_theme(page, "dark")
                    expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_attached()
                    cell(2).locator(".jp-InputArea-editor").click()  # the slow cell again, for its bar
                    page.keyboard.press("Shift+Enter")
                    page.keyboard.press("Shift+Enter")
                    progress("dark")
                    cell(4).locator(".jp-InputArea-editor").click()
                    page.keyboard.press("Shift+Enter")
                for name, index in (("magic", 1), ("dry-run", 5), ("sweep", 6), ("compare", 7), ("info", 9),
                                    ("batch", 10)):
                    shoot(name, output(index), theme)
                shoot("form", form, theme)
        finally:
            browser.close()
    for name in ("magic", "progress", "dry-run", "sweep", "compare", "info", "batch", "form"):
        for theme in ("light", "dark"):
            assert (SHOTS / f"{name}-{theme}.jpg").stat().st_size > 5_000, (name, theme)
