"""The documentation: built from the code (README, help), checked (links, fences), and honest messages."""


import subprocess
import sys
from pathlib import Path

import pytest


def test_no_credentials_message_names_only_real_settings() -> None:
    from yart_jupyter.clients.credentials import HOW_TO_PROVIDE

    assert "%config YandexArt.api_key" not in HOW_TO_PROVIDE
    for name in ("YC_API_KEY", "YC_IAM_TOKEN", "YC_FOLDER_ID", "YANDEXART_BASE_URL=emulator"):
        assert name in HOW_TO_PROVIDE


def test_readme_and_help_come_from_the_parsers() -> None:
    from yart_jupyter.notebook.magics import YandexArtMagics
    from yart_jupyter.notebook.magics.commands import markdown, usage

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert markdown() in readme, "README.s option table is stale: run `make reference`"
    assert YandexArtMagics.yandexart_cell.__doc__ == usage()
    for option in ("--seed", "--aspect", "--no-cache", "--background", "resume", "prune"):
        assert option in usage()


@pytest.mark.skipif(__import__("importlib").util.find_spec("mkdocs") is None, reason="needs the docs extra")
@pytest.mark.slow  # runs a whole tool
def test_docs_build_fails_on_a_broken_link_or_a_fence_that_is_not_code(tmp_path: Path) -> None:
    import shutil

    root = Path(__file__).parent.parent
    shutil.copytree(root / "docs", tmp_path / "docs")
    shutil.copy(root / "mkdocs.yml", tmp_path)
    (tmp_path / "demo-output").mkdir()  # what make demo writes (make docs makes it first)
    (tmp_path / "demo-output" / "quickstart.html").write_text("<html><body>the quickstart</body></html>")
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    env = {**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"}
    assert subprocess.run(build, cwd=tmp_path, capture_output=True, env=env, timeout=120).returncode == 0
    page = (tmp_path / "site" / "reference" / "index.html").read_text()
    assert "--no-cache" in page and "default_aspect" in page  # the generated reference is there
    page = (tmp_path / "site" / "experiments" / "index.html").read_text()
    before = page[:page.index('<pre><span></span><code>%%yandexart --seed 7 --vary ar=')]
    assert before.rfind("<li>") > before.rfind("</li>")  # the fence is a code block inside its list item
    page = (tmp_path / "site" / "provenance" / "index.html").read_text()
    assert 'src="../images/info-light.jpg#only-light"' in page  # the page shows its output
    assert "the quickstart" in (tmp_path / "site" / "quickstart" / "notebook.html").read_text()
    clean = (tmp_path / "docs" / "tests.md").read_text()
    inline = "\n> ```\n> %%yandexart --seed 1\na fence that renders inline\n```\n"
    (tmp_path / "docs" / "tests.md").write_text(clean + inline)
    fenced = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert fenced.returncode != 0 and "fenced blocks but" in fenced.stderr
    (tmp_path / "docs" / "tests.md").write_text(clean + "\n- an item\n\n  ```\n  %%yandexart --seed 1\n  ```\n")
    shallow = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert shallow.returncode != 0 and "indented less than 4 spaces" in shallow.stderr
    (tmp_path / "docs" / "tests.md").write_text(clean)
    (tmp_path / "docs" / "images" / "info-dark.jpg").unlink()
    gone = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)
    assert gone.returncode != 0 and "info-dark.jpg does not exist" in gone.stderr
    shutil.copy(root / "docs" / "images" / "info-dark.jpg", tmp_path / "docs" / "images")
    (tmp_path / "docs" / "tests.md").write_text(clean + "\n[a broken link](nowhere.md)\n")
    assert subprocess.run(build, cwd=tmp_path, capture_output=True, env=env, timeout=120).returncode != 0
