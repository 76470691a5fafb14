"""The README and docs/ stay true: the README is short, every Python example runs as shown, the
README's plugin is the code of examples/plugin/recentpop.py, and every relative link resolves."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PLUGIN = ROOT / "examples" / "plugin"
MAX_README_LINES = 200

_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def _blocks(path: Path, language: str) -> list[tuple[int, str]]:
    """(line number, source) of every fenced block of ``language`` in a markdown file."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(2)) for m in _FENCE.finditer(text) if m.group(1) == language]


def _python_blocks() -> list:
    cases = []
    for path in (README, DOCS / "api.md"):
        for line, source in _blocks(path, "python"):
            name = f"{path.relative_to(ROOT)}:{line}"
            skip = source.lstrip().startswith("# not run")
            cases.append(pytest.param(source, id=name, marks=[pytest.mark.skip(reason="marked # not run")] if skip else []))
    return cases


def _markdown_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_readme_is_at_most_200_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail to docs/ (at most {MAX_README_LINES})"


def test_the_docs_hold_python_examples_to_run():
    # the parametrised test below would pass vacuously if the fence pattern stopped matching
    assert len(_blocks(README, "python")) >= 2 and len(_blocks(DOCS / "api.md", "python")) >= 4


@pytest.mark.parametrize("source", _python_blocks())
def test_python_block_runs_as_shown(source, tmp_path, monkeypatch):
    """Each block runs alone, in a fresh namespace and an empty working directory. The plugin
    folder is on the path, as the README tells a user to put it (``PYTHONPATH``)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(PLUGIN))
    code = compile(source, "<markdown block>", "exec")
    exec(code, {"__name__": "__readme__"})


def _class_source(source: str, name: str) -> str:
    tree = ast.parse(source)
    found = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == name]
    assert len(found) == 1, f"expected one class {name}, found {len(found)}"
    return ast.get_source_segment(source, found[0])


def _normalised(text: str) -> str:
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def test_readme_plugin_is_the_example_plugin():
    blocks = [source for _, source in _blocks(README, "python") if re.search(r"^class RecentPop\b", source, re.MULTILINE)]
    assert len(blocks) == 1, f"expected one README block defining RecentPop, found {len(blocks)}"
    example = (PLUGIN / "recentpop.py").read_text(encoding="utf-8")
    readme_class = _normalised(_class_source(blocks[0], "RecentPop"))
    example_class = _normalised(_class_source(example, "RecentPop"))
    assert readme_class == example_class, "README.md's RecentPop differs from examples/plugin/recentpop.py; copy the example's class"
    # and the block imports what the example imports, so that it runs as the example does
    imports = [line for line in example.splitlines() if line.startswith(("import ", "from "))]
    assert imports and all(line in blocks[0].splitlines() for line in imports)


def _relative_links(path: Path) -> list[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))  # links inside code blocks are code
    targets = _LINK.findall(text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.IGNORECASE) and not t.startswith("#")]


@pytest.mark.parametrize("path", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files_that_exist(path):
    links = _relative_links(path)
    missing = [t for t in links if not (path.parent / t.split("#", 1)[0]).exists()]
    assert not missing, f"{path.relative_to(ROOT)}: links to missing files: {missing}"


def test_every_docs_page_is_linked_from_the_readme_and_says_what_it_holds():
    readme_links = {(ROOT / t.split("#", 1)[0]).resolve() for t in _relative_links(README)}
    for page in sorted(DOCS.glob("*.md")):
        assert page.resolve() in readme_links, f"README.md does not link to {page.relative_to(ROOT)}"
        first = page.read_text(encoding="utf-8").splitlines()[0]
        assert first and not first.startswith("#"), f"{page.relative_to(ROOT)} should open with one line saying what it holds"


def test_readme_commands_are_the_ones_ci_runs():
    text = README.read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    test_command = "pip install torch==2.13.0 && pip install -e '.[test]' && pytest -n 2"
    assert test_command in ci and test_command in text
    assert "pip install torch==2.13.0 && pip install -e . && python run_benchmark.py" in text
