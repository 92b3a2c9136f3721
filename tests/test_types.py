"""The type checker runs in the tests (issue 22): ``python -m mypy minilstm``, with the ``[mypy]`` settings of
setup.cfg, must report no error. That is what the ``py.typed`` marker the package ships promises."""

import configparser
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import minilstm

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about 30 s with an empty cache (.mypy_cache), as in CI; a few seconds after that
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason='mypy is not installed: pip install -e ".[test]" installs it')
def test_mypy_reports_no_error():
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO / "setup.cfg"), "minilstm"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        pytest.fail(f"python -m mypy minilstm reports errors:\n{run.stdout}{run.stderr}", pytrace=False)


def test_package_ships_py_typed():
    """py.typed is in the package and in its package data, so a wheel carries it too."""
    assert (Path(minilstm.__file__).parent / "py.typed").is_file()
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg", encoding="utf-8")
    assert "py.typed" in cfg["options.package_data"]["minilstm"].split()
