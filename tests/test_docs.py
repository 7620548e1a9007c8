"""The documentation: the site builds in strict mode (no broken link, anchor or missing page), the
command-line reference is the parser's, and the README stays a short front door whose links resolve.

The build needs the docs tools (the ``docs`` extra, also in ``test``); without MkDocs it is skipped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# words about when and where something ran belong on the dated notebook pages only
DATED = re.compile(r"\b20\d\d-\d\d-\d\d\b|\blease\b|\bsession\b|\bcarry\s*\[|\bH200\b", re.IGNORECASE)
GUIDE_PAGES = ["index.md", "get-started.md", *(f"guides/{p.name}" for p in (ROOT / "docs" / "guides").glob("*.md"))]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    assert "WARNING" not in proc.stderr, proc.stderr
    return out


def test_site_builds_with_every_page(site):
    for page in ["index.html", "get-started/index.html", "guides/training/index.html",
                 "guides/pretrained-weights/index.html", "reference/cli/index.html",
                 "reference/python-api/index.html", "reference/file-formats/index.html",
                 "studies/transfer/index.html", "studies/transfer/notebook/index.html",
                 "development/extending/index.html"]:
        assert (site / page).is_file(), page


def test_cli_reference_is_generated_from_the_parser(site):
    from fakeballoons.cli import build_parser

    html = (site / "reference" / "cli" / "index.html").read_text()
    parser = build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    for name, sub in subs.items():
        assert f'id="{name}"' in html, f"subcommand {name} missing from the CLI reference"
        for action in sub._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert flag in html, f"{name} {flag} missing from the CLI reference"


def test_python_api_reference_has_the_docstrings(site):
    html = (site / "reference" / "python-api" / "index.html").read_text()
    for name in ["SceneConfig", "sample_scene", "render_sampled", "FakeBalloons", "SegmentationMetrics", "state_dict"]:
        assert name in html, name


def test_readme_is_a_short_front_door():
    text = README.read_text()
    lines = text.splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; keep it at most 250"
    for command in ["make run", "make test", "pip install -e .", "--init pretrained:", "fakeballoons weights"]:
        assert command in text, command
    assert not DATED.search(text), f"README.md: {DATED.search(text).group(0)!r} belongs on a notebook page"


def test_readme_links_resolve():
    text = README.read_text()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        path = target.split("#")[0]
        assert (ROOT / path).exists(), f"README.md links to {target}, which does not exist"


# words about how the project is developed (its specification file, issue numbers, dates of runs, the
# development machines' leases) have no place in the package or its tests
DEVELOPMENT = re.compile(r"\bSPEC\b|SPEC\.md|\b[Ii]ssues? #?\d+|\bsession\b|\blease\b|\b20\d\d-\d\d-\d\d\b|\.\./shared")


def test_the_package_and_its_tests_do_not_speak_of_how_they_are_developed():
    found = []
    for folder in (ROOT / "src", ROOT / "tests"):
        for path in folder.rglob("*"):
            if path.suffix not in (".py", ".json", ".js", ".html", ".css", ".md") or path == Path(__file__):
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if match := DEVELOPMENT.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)!r}")
    assert not found, found


@pytest.mark.parametrize("page", GUIDE_PAGES)
def test_guides_hold_no_dated_words(page):
    text = (ROOT / "docs" / page).read_text()
    match = DATED.search(text)
    assert not match, f"docs/{page}: {match.group(0)!r} belongs on a dated notebook page"


def test_the_promises_page_names_tests_that_exist():
    text = (ROOT / "docs" / "reference" / "promises.md").read_text()
    named, current = [], None
    for cell in re.findall(r"`([^`]+)`", text):
        if "::" not in cell:
            continue
        file, name = cell.split("::", 1)
        current = file or current
        named.append((current, name.split("[")[0]))
    assert len(named) >= 30
    for file, name in named:
        assert f"def {name}(" in (ROOT / "tests" / file).read_text(), (file, name)
