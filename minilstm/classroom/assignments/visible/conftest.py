"""pytest settings for the assignment tests (a student version ships this as tests/conftest.py).

Every test is marked with the graded part it belongs to, ``@pytest.mark.part("lstm:step")``;
``minilstm grade`` adds up the points per part from these marks.
"""


def pytest_configure(config):
    config.addinivalue_line("markers", "part(name): the graded part ('assignment:part') this test belongs to")
