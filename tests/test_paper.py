"""minilstm paper: every table in miniature, one report. The quick setting runs in seconds; its numbers
only show that the pipeline works."""

import json

import pytest

from minilstm import cli
from minilstm.experiments import paper


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper") / "p"
    res = paper.run_paper(out, quick=True, progress=False, log=lambda s: None)
    return out, res


def test_quick_paper_writes_one_report_with_every_table(quick_report):
    out, res = quick_report
    assert not res["interrupted"]
    assert [r["table"] for r in res["rows"]] == ["Table 1", "Table 2", "Table 3", "Table 4"]
    md = (out / "report.md").read_text()
    # The summary table first, then each experiment's own table beside the paper's numbers.
    assert md.index("| Table 1 |") < md.index("| Table 4 |") < md.index("## Table 1")
    for paper_number in ("114.5", "70.5", "29.03", "7.5"):
        assert paper_number in md
    for row in res["rows"]:
        assert (out / row["key"]).is_dir()
        assert isinstance(row["reproduces"], bool) and row["wall_s"] > 0
        if row.get("figure"):
            assert f"]({row['key']}/{row['figure']})" in md
    saved = json.loads((out / "report.json").read_text())
    assert saved["quick"] is True and len(saved["rows"]) == 4


def test_rerun_reads_finished_tables_back(quick_report):
    out, res = quick_report
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    again = paper.run_paper(out, quick=True, progress=False, log=lambda s: None)
    assert [r["ours"] for r in again["rows"]] == [r["ours"] for r in res["rows"]]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == stamps  # nothing retrained


def test_a_paper_folder_with_other_settings_is_refused(quick_report):
    out, _ = quick_report
    with pytest.raises(Exception, match="other settings"):
        paper.run_paper(out, quick=False, progress=False, log=lambda s: None)


@pytest.mark.parametrize("argv, words", [
    (["paper", "--jobs", "0"], "at least 1"),
    (["paper", "--out", ""], "empty path"),
    (["paper", "--tables", "table5"], "invalid choice"),
])
def test_bad_flags_are_one_line(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_quick_and_full_contradict(tmp_path):
    with pytest.raises(ValueError, match="contradict"):
        paper.run_paper(tmp_path / "p", quick=True, full=True, progress=False, log=lambda s: None)
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("key, command", [("table2", "speech"), ("table3", "translate"), ("table4", "caption")])
def test_an_unreadable_results_file_is_one_line_naming_the_command(tmp_path, key, command):
    from minilstm.data import DataError

    (tmp_path / "results.json").write_text("{not json")
    stage = next(s for s in paper.STAGES if s.key == key)
    with pytest.raises(DataError, match=rf"unreadable .*`minilstm {command} --out {tmp_path}`"):
        stage.verdict(tmp_path)
