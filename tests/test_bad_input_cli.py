"""The project's own bad-input suite for the command line (and the files it reads).

Table-driven: every case runs ``minilstm ...`` in-process on a prepared folder and must

* exit with a non-zero status (2: argparse refused a flag, 1: refused after parsing),
* print exactly ONE line, on stderr, of the form ``minilstm COMMAND: error: ...``
  matching the case's pattern (what is wrong, and usually what to do),
* print no traceback, and
* leave every file as it was (the whole folder is hashed before and after).

Kinds covered: numeric flags (NaN, inf, negative, zero, out of range, not a number),
run folders (a file, another run, nothing to resume), split sizes, damaged or hostile
checkpoints (garbage, FIFO, folder, memory bombs, wrong dtypes, NaN weights, bad metadata),
and vocabulary mismatches. ``OUTCOMES`` counts them by exit status for the report.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile

import numpy as np
import pytest

from minilstm import cli
from minilstm.data import Corpus, load_corpus

ERROR = 1     # refused after parsing (config, data, checkpoint, run folder)
USAGE = 2     # refused by the argument parser (flag type or range)


@pytest.fixture(scope="module")
def corpora():
    full = load_corpus("builtin")
    small = Corpus(name="builtin", vocab=full.vocab, train=full.train[:6000], valid=full.valid[:1500],
                   test=full.test[:1500], entropy=None, description="slice for tests")
    other = Corpus(name="ptb", vocab=list(reversed(full.vocab)), train=small.train, valid=small.valid,
                   test=small.test, entropy=None, description="another vocabulary")
    return {"builtin": small, "ptb": other}


@pytest.fixture(scope="module")
def trained(corpora, tmp_path_factory):
    """One tiny trained run (built-in corpus slice): its last.npz is the good checkpoint every case starts from."""
    from minilstm.training import train

    run = tmp_path_factory.mktemp("trained") / "run"
    train("tiny", out_dir=run, corpus=corpora["builtin"], progress=False, log=lambda *a: None, hidden_size=8,
          num_layers=1, num_steps=10, batch_size=8, epochs=1, eval_batch_size=4, evaluate_test=False)
    # A model of another vocabulary size (50 words), for an ensemble that cannot be averaged.
    small = corpora["builtin"]
    v50 = Corpus(name="builtin", vocab=small.vocab[:50], train=small.train % 50, valid=small.valid % 50,
                 test=small.test % 50, entropy=None, description="50 words")
    other = run.parent / "v50"
    train("tiny", out_dir=other, corpus=v50, progress=False, log=lambda *a: None, hidden_size=8, num_layers=1,
          num_steps=10, batch_size=8, epochs=1, eval_batch_size=4, evaluate_test=False, train_tokens=800)
    (run / "v50.npz").write_bytes((other / "last.npz").read_bytes())
    return run / "last.npz"


@pytest.fixture
def world(world_dir, corpora, monkeypatch):
    """The prepared folder, with load_corpus serving the small corpora (builtin, and "ptb" = another vocabulary)."""
    import minilstm.data as data_mod
    import minilstm.training as tr

    real = data_mod.load_corpus

    def fake(name, data_dir=None, **kw):  # an explicit --data-dir goes to the real loader
        return corpora[name] if data_dir is None else real(name, data_dir=data_dir, **kw)

    monkeypatch.setattr(tr, "load_corpus", fake)
    monkeypatch.setattr(data_mod, "load_corpus", fake)
    return world_dir


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory, trained):
    """A folder with a good checkpoint, a finished run, a file, a FIFO and hostile checkpoints (made once:
    every case checks that it changed nothing)."""
    tmp_path = tmp_path_factory.mktemp("world")
    good = tmp_path / "good.npz"
    good.write_bytes(trained.read_bytes())
    (tmp_path / "run").mkdir()
    for name in ("last.npz", "config.json", "metrics.jsonl"):
        (tmp_path / "run" / name).write_bytes(trained.with_name(name).read_bytes())
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "best.npz").write_bytes(trained.read_bytes())
    (tmp_path / "empty").mkdir()
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "last.npz").write_bytes(b"PK\x03\x04 not really")
    (tmp_path / "afile").write_text("I am a file\n")
    (tmp_path / "notptb").mkdir()
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        (tmp_path / "notptb" / name).write_text("a b c\n")
    (tmp_path / "dirs").mkdir()
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"):
        (tmp_path / "dirs" / name).mkdir()
    # --force onto a run whose best.npz is a folder: it cannot be removed, so nothing may be removed.
    (tmp_path / "forcedir").mkdir()
    for name in ("config.json", "metrics.jsonl"):
        (tmp_path / "forcedir" / name).write_bytes(trained.with_name(name).read_bytes())
    (tmp_path / "forcedir" / "best.npz").mkdir()
    (tmp_path / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n a picture of mine")
    # Folders of runs whose validation perplexities cannot be read: never "the best run".
    for run, value in (("a", "NaN"), ("b", '"12.5"')):
        (tmp_path / "unreadable" / run).mkdir(parents=True)
        (tmp_path / "unreadable" / run / "best.npz").write_bytes(trained.read_bytes())
        (tmp_path / "unreadable" / run / "metrics.jsonl").write_text(
            '{"event": "epoch", "epoch": 1, "valid_ppl": %s}\n' % value)
    (tmp_path / "v50.npz").write_bytes(trained.with_name("v50.npz").read_bytes())
    # A lab folder with the user's own lab.md, and one with a damaged summary.json.
    (tmp_path / "labmine").mkdir()
    (tmp_path / "labmine" / "lab.md").write_text("# my notes on the lab\n")
    (tmp_path / "labbad" / "none").mkdir(parents=True)
    (tmp_path / "labbad" / "none" / "summary.json").write_text('{"valid_ppl": 12.0, "epochs": [')
    (tmp_path / "garbage.npz").write_bytes(os.urandom(300))
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo.npz")
    _hostile(good, tmp_path)
    return tmp_path


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _rewrite(src, dst, replace=(), add=(), deflate=()):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            key = info.filename[:-4]
            zout.writestr(info.filename, dict(replace).get(key, zin.read(info)),
                          compress_type=zipfile.ZIP_DEFLATED if key in deflate else zipfile.ZIP_STORED)
        for key, data in dict(add).items():
            zout.writestr(key + ".npy", data,
                          compress_type=zipfile.ZIP_DEFLATED if key in deflate else zipfile.ZIP_STORED)


def _hostile(good, folder):
    with zipfile.ZipFile(good) as z:
        meta = json.loads(np.load(io.BytesIO(z.read("__meta__.npy"))).tobytes())
        w = np.load(io.BytesIO(z.read("param/out.b.npy")))

    def with_meta(name, edit):
        m = json.loads(json.dumps(meta))
        edit(m)
        _rewrite(good, folder / name, replace={"__meta__": _npy(np.frombuffer(json.dumps(m).encode(), np.uint8))})

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (16 << 20,)})
    _rewrite(good, folder / "bomb.npz", add={"param/zeros": header.getvalue() + bytes(16 << 20)}, deflate={"param/zeros"})
    _rewrite(good, folder / "int64.npz", replace={"param/out.b": _npy(w.astype(np.int64))})
    nan = w.copy()
    nan[0] = np.nan
    _rewrite(good, folder / "nan.npz", replace={"param/out.b": _npy(nan)})
    with_meta("hidden.npz", lambda m: m["config"].update(hidden_size=16000))
    with_meta("unknown.npz", lambda m: m["config"].update(colour="red"))
    with_meta("missing.npz", lambda m: m["config"].pop("num_steps"))
    with_meta("nanmeta.npz", lambda m: m["config"].update(lr=float("nan")))
    with_meta("vocab.npz", lambda m: m.update(vocab_size=2 ** 40))


# (id, argv, expected exit status, pattern of the one line). {d} is the prepared folder.
CASES = [
    # --- train: flags
    ("clip-nan", "train --clip nan --no-compare --out {d}/n", USAGE, "--clip: must be a finite number, got nan"),
    ("clip-neg", "train --clip -1 --no-compare --out {d}/n", ERROR, "--clip must be positive"),
    ("max-epoch-neg", "train --max-epoch -5 --no-compare --out {d}/n", ERROR, "--max-epoch must be at least 1"),
    ("init-scale-nan", "train --init-scale nan --no-compare --out {d}/n", USAGE, "--init-scale: must be a finite"),
    ("init-scale-huge", "train --init-scale 1e6 --no-compare --out {d}/n", ERROR, "--init-scale = 1000000.0 is far too large"),
    ("hidden-huge", "train --hidden 200000 --no-compare --out {d}/n", ERROR, "--hidden = 200,000 is beyond the limit"),
    ("memory", "train --hidden 16384 --layers 64 --no-compare --out {d}/n", ERROR, "needs at least .* GiB"),
    ("hidden-zero", "train --hidden 0 --no-compare --out {d}/n", ERROR, "--hidden must be at least 1"),
    ("steps-abc", "train --steps abc --out {d}/n", USAGE, "--steps: 'abc' is not a whole number"),
    ("steps-float", "train --steps 2.5 --out {d}/n", USAGE, "--steps: '2.5' is not a whole number"),
    ("dropout-one", "train --dropout 1 --no-compare --out {d}/n", ERROR, r"--dropout must be in \[0, 1\)"),
    ("dropout-neg", "train --dropout -0.1 --no-compare --out {d}/n", ERROR, r"--dropout must be in \[0, 1\)"),
    ("lr-zero", "train --lr 0 --no-compare --out {d}/n", ERROR, "--lr must be positive"),
    ("lr-inf", "train --lr inf --no-compare --out {d}/n", USAGE, "--lr: must be a finite number"),
    ("lr-decay-below-1", "train --lr-decay 0.5 --no-compare --out {d}/n", ERROR, "--lr-decay must be at least 1"),
    ("epochs-zero", "train --epochs 0 --no-compare --out {d}/n", ERROR, "--epochs must be at least 1"),
    ("eval-batch-zero", "train --eval-batch 0 --no-compare --out {d}/n", ERROR, "--eval-batch must be at least 1"),
    ("train-tokens-neg", "train --train-tokens -1 --no-compare --out {d}/n", ERROR, "--train-tokens must be 0"),
    ("seed-neg", "train --seed -1 --no-compare --out {d}/n", USAGE, "--seed: must be at least 0"),
    ("dtype", "train --dtype float16 --out {d}/n", USAGE, "--dtype: invalid choice"),
    ("compare-p", "train --compare-p 1.5 --out {d}/n", USAGE, "--compare-p: must be below 1"),
    # --- train: run folders and splits
    ("out-is-file", "train --no-compare --out {d}/afile", ERROR, "is a file, not a folder"),
    ("out-under-file", "train --no-compare --out {d}/afile/sub", ERROR, "cannot create the run folder"),
    ("out-holds-run", "train --no-compare --out {d}/run", ERROR, r"already holds a run \(config.json, metrics.jsonl, last.npz\)"),
    ("out-holds-best", "train --no-compare --out {d}/other", ERROR, r"already holds a run \(best.npz\).*--force"),
    ("resume-nothing", "train --no-compare --resume --out {d}/empty", ERROR, "--resume: no checkpoint"),
    ("resume-no-folder", "train --no-compare --resume --out {d}/nowhere", ERROR, "--resume: no run folder"),
    ("resume-only-best", "train --no-compare --resume --out {d}/other", ERROR, "no checkpoint .*holds best.npz"),
    ("resume-damaged", "train --no-compare --resume --out {d}/damaged", ERROR, "damaged or not a minilstm checkpoint"),
    ("train-eval-batch-big", "train --no-compare --eval-batch 800 --hidden 8 --out {d}/n", ERROR,
     "valid split has 1,500 tokens, too few for --eval-batch 800.*--eval-batch 750 or less"),
    ("no-chunk", "train --no-compare --batch 600 --hidden 8 --out {d}/n", ERROR, "too few for one chunk"),
    ("train-tokens-few", "train --no-compare --train-tokens 10 --hidden 8 --out {d}/n", ERROR,
     "training split has 10 tokens.*--train-tokens"),
    # --- train: nothing lost, nothing silently changed (issue 22)
    ("force-cannot-remove", "train --no-compare --force --out {d}/forcedir --hidden 8", ERROR,
     r"cannot replace .*best.npz: it is a folder.*nothing was removed"),
    ("resume-other-hidden", "train --no-compare --resume --out {d}/run --hidden 9", ERROR,
     r"--hidden 9 contradicts the run's saved --hidden 8.*only --epochs may grow.*minilstm train --resume --out"),
    ("resume-other-tokens", "train --no-compare --resume --out {d}/run --train-tokens 8000", ERROR,
     r"--train-tokens 8000 contradicts the run's saved --train-tokens 0"),
    ("resume-other-config", "train --no-compare --resume --out {d}/run --config small", ERROR,
     r"--config small contradicts the run's saved --config tiny"),
    ("lr-decay-overflow", "train --no-compare --lr-decay 1e300 --max-epoch 1 --out {d}/n", ERROR,
     r"--lr-decay = 1e\+300 divides the learning rate 1 down to zero.*smaller --lr-decay"),
    ("lr-decay-underflow", "train --no-compare --lr 1e-300 --lr-decay 1e5 --max-epoch 1 --epochs 3 --out {d}/n",
     ERROR, "down to zero within the 3 epochs"),
    # --- plot: never over a file it did not draw
    ("plot-over-checkpoint", "plot {d}/run -o {d}/run/last.npz", ERROR, "give a file name ending in .png"),
    ("plot-over-picture", "plot {d}/run -o {d}/picture.png", ERROR, "minilstm did not draw it.*--force"),
    ("plot-onto-folder", "plot {d}/run -o {d}/empty", ERROR, "is a folder"),
    # --- lab
    ("lab-user-md", "lab --out {d}/labmine --dataset builtin --runs none --no-progress", ERROR,
     r"labmine/lab.md exists and the lab did not write it.*--force"),
    ("lab-bad-summary", "lab --out {d}/labbad --dataset builtin --runs none --hidden 4 --no-progress", ERROR,
     r"labbad/none/summary.json is not a readable run summary \(not valid JSON"),
    ("lab-out-empty-hidden", "lab --out {d}/n --hidden 0", USAGE, "--hidden: must be at least 1"),
    # --- bench: its --out checked before minutes of timing
    ("bench-out-folder", "bench --configs tiny --out {d}/empty", USAGE, "--out .*empty is a folder"),
    ("bench-out-nowhere", "bench --configs tiny --out {d}/nowhere/b.json", USAGE, "the folder .*nowhere does not exist"),
    # --- data folders
    ("data-empty", "train --dataset ptb --no-compare --data-dir {d}/empty --out {d}/n", ERROR,
     "lacks ptb.train.txt, ptb.valid.txt, ptb.test.txt"),
    ("data-file", "train --dataset ptb --no-compare --data-dir {d}/afile --out {d}/n", ERROR, "is not a folder"),
    ("data-missing", "train --dataset ptb --no-compare --data-dir {d}/nowhere --out {d}/n", ERROR, "is not a folder"),
    ("data-not-ptb", "train --dataset ptb --no-compare --data-dir {d}/notptb --out {d}/n", ERROR,
     "wrong SHA-256.*it is truncated"),
    ("data-dirs", "train --dataset ptb --no-compare --data-dir {d}/dirs --out {d}/n", ERROR, "lacks ptb.train.txt"),
    ("eval-data-file", "eval {d}/good.npz --dataset ptb --data-dir {d}/afile", ERROR, "is not a folder"),
    # --- eval
    ("eval-steps-neg", "eval {d}/good.npz --steps -5", USAGE, "--steps: must be at least 1, got -5"),
    ("eval-batch-0", "eval {d}/good.npz --eval-batch 0", USAGE, "--eval-batch: must be at least 1"),
    ("eval-batch-big", "eval {d}/good.npz --eval-batch 1000 --split test", ERROR, "too few for 1000 evaluation"),
    ("eval-missing", "eval {d}/nothing.npz", ERROR, "no checkpoint file at"),
    # A run folder stands for its checkpoint (best.npz, else last.npz): one without any is refused.
    ("eval-folder", "eval {d}/empty", ERROR, "holds no checkpoint"),
    ("sample-folder", "sample {d}/empty", ERROR, "holds no checkpoint"),
    ("eval-fifo", "eval {d}/fifo.npz", ERROR, "not a regular file"),
    ("eval-garbage", "eval {d}/garbage.npz", ERROR, "not an .npz archive"),
    ("eval-bomb", "eval {d}/bomb.npz", ERROR, "compressed or encrypted"),
    ("eval-int64", "eval {d}/int64.npz", ERROR, "'param/out.b' is int64, not float32/float64"),
    ("eval-nan-weights", "eval {d}/nan.npz", ERROR, "'out.b' contains NaN or inf"),
    ("eval-hidden-lie", "eval {d}/hidden.npz", ERROR, r"config says vocab_size x hidden_size = \(\d+, 16000\)"),
    ("eval-unknown-key", "eval {d}/unknown.npz", ERROR, r"unknown field\(s\) \['colour'\]"),
    ("eval-missing-key", "eval {d}/missing.npz", ERROR, r"lacks the field\(s\) \['num_steps'\]"),
    ("eval-nan-meta", "eval {d}/nanmeta.npz", ERROR, "lr must be a finite number"),
    ("eval-vocab-size", "eval {d}/vocab.npz", ERROR, "vocab_size 1099511627776 is not a whole number"),
    ("eval-other-vocab", "eval {d}/good.npz --dataset ptb", ERROR, "different vocabulary"),
    ("eval-unreadable-runs", "eval {d}/unreadable", ERROR,
     r"no run there has a readable validation perplexity \(a: .*valid_ppl NaN at epoch 1; b: .*valid_ppl \"12.5\""),
    ("eval-split-typo", "eval --split tset {d}/good.npz", USAGE, "'tset' is neither a split"),
    ("eval-split-nothing", "eval --split test", ERROR, "name a checkpoint or a run folder"),
    ("eval-ensemble-vocab", "eval {d}/good.npz {d}/v50.npz", ERROR,
     "different vocabularies .*v50.npz: 50 words"),
    # --- sample
    ("sample-other-vocab", "sample {d}/good.npz --dataset ptb", ERROR, "another vocabulary"),
    ("sample-temp-zero", "sample {d}/good.npz --temperature 0", USAGE, "--temperature: must be above 0"),
    ("sample-temp-nan", "sample {d}/good.npz --temperature nan", USAGE, "--temperature: must be a finite"),
    ("sample-length-neg", "sample {d}/good.npz --length -1", USAGE, "--length: must be at least 0"),
    ("sample-prime", "sample {d}/good.npz --prime zzzunknown", ERROR, "not in the vocabulary: 'zzzunknown'"),
    ("sample-bomb", "sample {d}/bomb.npz", ERROR, "compressed or encrypted"),
    # --- gradcheck
    ("gradcheck-batch-0", "gradcheck --batch 0", USAGE, "--batch: must be at least 1, got 0"),
    ("gradcheck-steps-0", "gradcheck --steps 0", USAGE, "--steps: must be at least 1"),
    ("gradcheck-hidden-big", "gradcheck --hidden 1000", USAGE, "--hidden: must be at most 64"),
    ("gradcheck-dropout-1", "gradcheck --dropout 1", USAGE, "--dropout: must be below 1"),
    ("gradcheck-vocab-1", "gradcheck --vocab 1", USAGE, "--vocab: must be at least 2"),
    ("gradcheck-init-nan", "gradcheck --init-scale nan", USAGE, "--init-scale: must be a finite"),
]
OUTCOMES = {"refused by the parser (exit 2)": sum(c[2] == USAGE for c in CASES),
            "refused after parsing (exit 1)": sum(c[2] == ERROR for c in CASES)}


def _snapshot(folder):
    """{relative path: sha256} of every regular file (and the set of folders) under ``folder``."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), folder) + "/"] = "dir"
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p):
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, folder)] = hashlib.sha256(fh.read()).hexdigest()
            else:
                out[os.path.relpath(p, folder)] = "special"
    return out


@pytest.mark.parametrize("argv,status,pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line_and_changes_nothing(world, capsys, argv, status, pattern):
    import re

    if "fifo" in argv and not (world / "fifo.npz").exists():
        pytest.skip("no FIFOs on this OS")
    before = _snapshot(world)
    args = argv.format(d=world).split() + (["--no-progress"] if argv.split()[0] in ("train", "eval") else [])
    try:
        rc = cli.main(args)
    except SystemExit as exc:  # argparse
        rc = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    command = args[0]
    assert lines[0].startswith(f"minilstm {command}: error: "), lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    assert rc == status, (rc, lines[0])
    assert _snapshot(world) == before, "files were changed"


def test_the_suite_is_large_and_counted():
    assert len(CASES) >= 50 and len({c[0] for c in CASES}) == len(CASES)
    assert sum(OUTCOMES.values()) == len(CASES)


@pytest.mark.parametrize("argv", [
    ["bench", "--configs", "tiny", "--rounds", "1", "--repeats", "1", "--no-classroom", "--out", "{tmp}/b.json"],
    ["train", "--config", "tiny", "--epochs", "1", "--dataset", "builtin", "--no-progress"],
])
def test_a_reader_that_goes_away_is_no_traceback(tmp_path, argv):
    """`minilstm ... | head -1`: the pipe closes under us; Python's own traceback must not appear."""
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first line
    proc = subprocess.run([sys.executable, "-m", "minilstm", *(a.format(tmp=tmp_path) for a in argv)],
                          stdout=w, stderr=subprocess.PIPE, cwd=tmp_path, timeout=300,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    os.close(w)
    err = proc.stderr.decode()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert proc.returncode == 141, (proc.returncode, err)
