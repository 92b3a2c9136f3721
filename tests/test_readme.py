"""The README keeps its promises: the two commands, CI running exactly its test command, links that
lead somewhere, and only commands (and flags) that exist."""

import re
import shlex
from pathlib import Path

import pytest

from minilstm import cli

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

# The two commands, byte for byte: CI and the project's contract depend on them.
MAIN_COMMAND = "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && minilstm train"
TEST_COMMAND = ('python3 -m venv .venv && . .venv/bin/activate && pip install -q -e ".[test]" '
                "&& python -m pytest -q")

# The markdown files whose links are checked, and whose headings links may point at.
LINKED_DOCS = ("README.md", "BENCHMARKS.md", "CHANGELOG.md")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def fenced_blocks(text: str, lang: str) -> list:
    """The bodies of the ```lang fenced blocks of a markdown text."""
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def test_the_two_commands_are_there_each_in_its_own_block():
    blocks = [b.strip() for b in fenced_blocks(readme(), "bash")]
    assert MAIN_COMMAND in blocks, "the README lost the main command (or changed it)"
    assert TEST_COMMAND in blocks, "the README lost the test command (or changed it)"
    text = readme()
    assert text.index(MAIN_COMMAND) < text.index(TEST_COMMAND)


def test_ci_runs_exactly_the_readme_test_command_and_nothing_else():
    lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    code = [line for line in lines if line and not line.startswith("#")]
    assert code == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "rm -rf .venv", TEST_COMMAND], (
        ".ci/run must be: cd to the repository, rm -rf .venv, then the README's test command verbatim")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than - and _ dropped, spaces to -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def _links(path: Path) -> list:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("doc", LINKED_DOCS)
def test_every_relative_link_points_to_an_existing_file_and_heading(doc):
    path = REPO / doc
    if not path.exists():
        pytest.skip(f"{doc} does not exist")
    bad = []
    for link in _links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # https:, mailto: ...
            continue
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        if not file.exists():
            bad.append(f"{link}: no file {target}")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            bad.append(f"{link}: no heading #{anchor} in {file.name}")
    assert not bad, f"broken links in {doc}:\n" + "\n".join(bad)


def _command_lines(text: str) -> list:
    """Every `minilstm ...` line of the bash blocks, continuations joined, comments dropped."""
    out = []
    for block in fenced_blocks(text, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if "&& minilstm" in line:
                line = line[line.index("minilstm"):]
            if line.startswith("minilstm "):
                out.append(shlex.split(line, comments=True))
    return out


def test_every_command_in_the_readme_parses():
    """Each `minilstm ...` line of a code block is accepted by the real parser (command and flags)."""
    parser = cli.build_parser()
    lines = _command_lines(readme())
    assert len(lines) > 10
    for argv in lines:
        try:
            parser.parse_args(argv[1:])
        except SystemExit as exc:  # argparse's refusal
            pytest.fail(f"the README's command does not parse (exit {exc.code}): {shlex.join(argv)}")


def test_every_command_named_in_the_prose_exists():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    names = set(re.findall(r"`minilstm ([a-z]+)", readme()))
    assert names, "no `minilstm COMMAND` in the README"
    assert names <= set(sub.choices), f"the README names commands that do not exist: {names - set(sub.choices)}"


def test_reproduction_section_opens_with_the_paper_table_placeholder():
    """The lead pastes `minilstm paper`'s summary table between these markers."""
    text = readme()
    section = text.index("## Reproducing the paper")
    start, end = text.index("<!-- paper-table:start -->"), text.index("<!-- paper-table:end -->")
    assert section < start < end
    assert text[section:start].strip() == "## Reproducing the paper"
