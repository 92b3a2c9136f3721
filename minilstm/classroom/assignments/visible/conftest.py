"""pytest settings for the assignment tests (a student version ships this as tests/conftest.py).

Every test is marked with the graded part it belongs to, ``@pytest.mark.part("lstm:step")``;
``minilstm grade`` adds up the points per part from these marks.
"""


def pytest_configure(config):
    config.addinivalue_line("markers", "part(name): the graded part ('assignment:part') this test belongs to")


def pytest_collection_modifyitems(items):
    """Warnings stay warnings in a handout. The course's own suite makes every warning an error
    (setup.cfg, shipped with the handout), but a student's first sigmoid that overflows for a large
    negative input is still correct: the visible tests judge the numbers, and a warning is shown."""
    import pytest

    for item in items:
        item.add_marker(pytest.mark.filterwarnings("default"))
