"""Translation as a conditional language model (the paper's Table 3 in miniature).

The pins of the issue: padding changes nothing, the perplexity counts only target
tokens (a uniform model scores Vt), the whole model passes a float64 gradient check
with fixed masks and padding, decoding reads the very model training scores,
beam 1 is greedy, and the command writes a table whose BLEU anyone can recompute.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from minilstm import gradcheck as gc
from minilstm.data.parallel import batch_pairs, make_builtin_parallel, num_target_tokens
from minilstm.decoding import beam_search, greedy_decode
from minilstm.experiments import translate as tr
from minilstm.models import TranslationModel


@pytest.fixture(scope="module")
def corpus():
    return make_builtin_parallel()


def model_for(corpus, **kw):
    Vs, Vt = corpus.sizes
    kw = {"hidden_size": 8, "num_layers": 2, "dtype": "float64", "seed": 0, **kw}
    return TranslationModel(Vs, Vt, corpus.eos_id, **kw)


def one_batch(pairs, model):
    return batch_pairs(pairs, len(pairs), model.Vs, model.eos, dtype=model.dtype)[0]


def test_padding_changes_no_loss_no_gradient(corpus):
    """A short pair padded inside a batch with a long one: its loss and gradient are those it has alone,
    in training (the same dropout masks, cut to its length) and in evaluation."""
    model = model_for(corpus, dropout=0.4, init_scale=0.3)
    short, long_ = sorted(corpus.train[:40], key=lambda p: len(p[0]) + len(p[1]))[::39]
    inputs, targets, weights = one_batch([short, long_], model)
    T_short = len(short[0]) + 1 + len(short[1])
    assert inputs.shape[1] > T_short and weights[0, T_short:].sum() == 0  # the short one is padded
    loss, cache = model.forward(inputs, targets, weights)
    both = model.backward(cache)
    masks = cache.masks
    parts = []
    for row, pair, T in ((0, short, T_short), (1, long_, inputs.shape[1])):
        i, t, w = one_batch([pair], model)
        mine = {k: m[row:row + 1, :T] for k, m in masks.items()}
        l, c = model.forward(i, t, w, masks=mine)
        parts.append((l, model.backward(c)))
    assert loss == pytest.approx((parts[0][0] + parts[1][0]) / 2, rel=1e-12)  # the loss is averaged over N = 2
    for name in model.params:
        np.testing.assert_allclose(2 * both[name], parts[0][1][name] + parts[1][1][name], rtol=1e-10, atol=1e-13)
    alone = model.nll(*one_batch([short], model))
    together = model.nll(inputs[:1], targets[:1], weights[:1])
    assert alone[0] == pytest.approx(together[0], rel=1e-12) and alone[1] == together[1] == len(short[1]) + 1


def test_padding_changes_no_translation(corpus):
    model = model_for(corpus, init_scale=0.5)
    sources = [s for s, _ in corpus.test[:12]]
    together = beam_search(model, sources, beam_size=3)
    assert together == [beam_search(model, [s], beam_size=3)[0] for s in sources]
    assert greedy_decode(model, sources) == [greedy_decode(model, [s])[0] for s in sources]


def test_perplexity_counts_target_tokens_only_and_uniform_is_vt(corpus):
    model = model_for(corpus)
    model.params["out.W"][:] = 0.0
    model.params["out.b"][:] = 0.0  # every target word equally likely
    pairs = corpus.valid[:30]
    assert tr.evaluate_perplexity(model, pairs, batch_size=7) == pytest.approx(corpus.sizes[1], rel=1e-10)
    _, count = model.nll(*one_batch(pairs, model))
    assert count == num_target_tokens(pairs) == sum(len(t) + 1 for _, t in pairs)


def test_whole_model_gradient_check_with_padding(corpus):
    model = model_for(corpus, hidden_size=5, dropout=0.3, init_scale=0.5)
    pairs = [p for p in corpus.train[:30] if len(p[0]) + len(p[1]) < 13][:3]
    inputs, targets, weights = one_batch(pairs, model)
    assert len({int(w.sum()) for w in weights}) > 1  # variable lengths, so padding
    _, cache = model.forward(inputs, targets, weights, rng=np.random.default_rng(5))
    masks, grads = cache.masks, None
    grads = model.backward(cache)
    assert sorted(masks) == ["drop0", "drop1", "drop2"]

    def f():
        return model.forward(inputs, targets, weights, masks=masks)[0]

    pick = np.random.default_rng(0)
    worst = 0.0
    for name in model.params:
        r = gc.check_array_gradient(f, model.params[name], grads[name], name, max_checks=40, rng=pick)
        assert r.passed, r
        worst = max(worst, r.max_rel_error)
    assert worst < 1e-7


def test_decoding_reads_the_model_training_scores(corpus):
    """start() then step() over the reference target gives the very log-probabilities forward scores."""
    model = model_for(corpus, init_scale=0.5)
    pairs = corpus.test[:4]
    inputs, targets, weights = one_batch(pairs, model)
    loss, _ = model.forward(inputs, targets, weights, train=False)
    state, lp = model.start([s for s, _ in pairs])
    nll = -lp[np.arange(4), [t[0] for _, t in pairs]]
    longest = max(len(t) for _, t in pairs)
    for k in range(longest):
        prev = np.array([t[k] if k < len(t) else 0 for _, t in pairs])
        state, lp = model.step(prev, state)
        nxt = [t[k + 1] if k + 1 < len(t) else corpus.eos_id for _, t in pairs]
        nll = nll + np.where([k < len(t) for _, t in pairs], -lp[np.arange(4), nxt], 0.0)
    assert float(nll.sum()) / 4 == pytest.approx(loss, rel=1e-10)


def test_beam_one_is_greedy_on_the_translation_model(corpus):
    model = model_for(corpus, init_scale=0.5, seed=3)
    sources = [s for s, _ in corpus.test[:20]]
    assert beam_search(model, sources, beam_size=1) == greedy_decode(model, sources)


def test_quick_experiment_writes_a_table_bleu_recomputes_and_resumes(tmp_path):
    import sacrebleu

    out = tmp_path / "tr"
    res = tr.run_translate(out, seeds=2, quick=True, progress=False, log=lambda s: None)
    result = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["seed"]) for r in result["rows"]] == [
        ("non-regularized", 0), ("non-regularized", 1), ("regularized", 0), ("regularized", 1)]
    refs = (out / "test.ref.txt").read_text().splitlines()
    for row in result["rows"]:
        for key in ("greedy", "beam12"):
            hyps = (out / row["run"] / f"test.{key}.txt").read_text().splitlines()
            assert len(hyps) == len(refs)
            assert row[f"bleu_{key}"] == round(sacrebleu.corpus_bleu(hyps, [refs]).score, 2)
    md = (out / "results.md").read_text()
    assert "| non-regularized (dropout 0) | 5.8 | 25.9 |" in md and "29.03" in md and "± " in md
    assert (out / "validation.png").stat().st_size > 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    again = tr.run_translate(out, seeds=2, quick=True, progress=False, log=lambda s: None)
    assert again["rows"] == res["rows"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")} == before  # finished runs are not retrained
    with pytest.raises(Exception, match="other settings"):
        tr.run_translate(out, seeds=2, quick=True, progress=False, log=lambda s: None, hidden_size=16)


def test_interrupted_run_resumes_bit_exactly(tmp_path, corpus):
    cfg = tr.TranslateConfig(**{**tr.QUICK, "dropout": 0.3, "epochs": 3, "patience": 3})
    tr.train_run(cfg, corpus, tmp_path / "whole", log=lambda s: None)

    def stop(info):
        if info["step"] == 13:  # mid-epoch (10 batches an epoch)
            raise KeyboardInterrupt

    assert tr.train_run(cfg, corpus, tmp_path / "cut", log=lambda s: None, on_step=stop) == {"interrupted": True}
    summary = tr.train_run(cfg, corpus, tmp_path / "cut", log=lambda s: None)
    from minilstm.checkpoint import load_checkpoint
    a, b = load_checkpoint(tmp_path / "whole" / "last.npz"), load_checkpoint(tmp_path / "cut" / "last.npz")
    for name in a.params:
        assert np.array_equal(a.params[name], b.params[name]), name
    for name in a.arrays:  # Adam's moments too
        assert np.array_equal(a.arrays[name], b.arrays[name]), name
    assert summary == json.loads((tmp_path / "whole" / "summary.json").read_text()) | {
        k: summary[k] for k in summary if k.endswith("_s")}


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "minilstm", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_cli_translates_and_refuses_bad_input(tmp_path):
    r = run_cli("translate", "--quick", "--seeds", "1", "--out", "q", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "| regularized (dropout 0.3) |" in r.stdout
    r = run_cli("translate", "--model", "q", "--beam", "3", "the boy eats an apple", cwd=tmp_path)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1, r.stderr
    (tmp_path / "in.txt").write_text("the boy eats an apple\nthe girls see a dog\n")
    r = run_cli("translate", "--model", "q", "--file", "in.txt", cwd=tmp_path)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r.stderr
    cases = [
        (("translate", "--model", "q", "the boy eats a zebra"), "never seen 'zebra'"),
        (("translate", "--model", "q", "--beam", "0", "a"), "at least 1"),
        (("translate", "--model", "q", "--beam", "-3", "a"), "at least 1"),
        (("translate", "the boy"), "add --model"),
        (("translate", "--model", "nowhere", "a"), "no translation model at nowhere"),
        (("translate", "--model", "q", "--file", "missing.txt"), "cannot read missing.txt"),
    ]
    (tmp_path / "bad").mkdir()
    for split in ("train", "valid", "test"):
        (tmp_path / "bad" / f"{split}.src").write_text("a b\nc d\n")
        (tmp_path / "bad" / f"{split}.tgt").write_text("x y\n" if split == "valid" else "x y\nz w\n")
    cases.append((("translate", "--data-dir", "bad", "--out", "u", "--quick"), "valid"))
    cases.append((("translate", "--model", "q", " ".join(["the"] * 201)), "more than the limit"))
    (tmp_path / "mine").mkdir()  # a well-formed corpus of its own: another vocabulary than q's
    for split in ("train", "valid", "test"):
        (tmp_path / "mine" / f"{split}.src").write_text("a b\nc d\n")
        (tmp_path / "mine" / f"{split}.tgt").write_text("x y\nz w\n")
    cases.append((("translate", "--data-dir", "mine", "--out", "q", "--quick", "--seeds", "1"), "other settings"))
    for args, words in cases:
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode in (1, 2), (args, r.stdout, r.stderr)
        errors = [line for line in r.stderr.splitlines() if "error" in line]
        assert words in errors[-1] and "Traceback" not in r.stderr and len(errors) == 1, (args, r.stderr)
    assert not (tmp_path / "u").exists()  # nothing written for bad data


def test_a_language_model_and_a_translation_model_refuse_each_other(tmp_path):
    import minilstm
    from minilstm.checkpoint import CheckpointError
    res = minilstm.train("tiny", out_dir=tmp_path / "lm", epochs=1, train_tokens=2000, hidden_size=8, progress=False,
                         log=lambda s: None, evaluate_test=False)
    assert res.history
    with pytest.raises(CheckpointError, match="not a translation model"):
        tr.load_translator(tmp_path / "lm", log=lambda s: None)
    out = tmp_path / "tr"
    tr.run_translate(out, seeds=1, quick=True, progress=False, log=lambda s: None)
    with pytest.raises(CheckpointError, match="not a language model"):
        minilstm.load_model(out / "regularized-seed0" / "best.npz")


def test_bleu_needs_sacrebleu_says_how_to_install(tmp_path, monkeypatch):
    from minilstm.data import DataError
    (tmp_path / "h").write_text("a b\n")
    monkeypatch.setitem(sys.modules, "sacrebleu", None)
    with pytest.raises(DataError, match=r"minilstm\[paper\]"):
        tr.bleu_from_files(tmp_path / "h", tmp_path / "h")
