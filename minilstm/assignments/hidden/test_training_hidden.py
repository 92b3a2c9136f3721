"""Hidden tests of the ``training`` assignment (run by ``minilstm grade``, never shipped).

The loop must agree to rounding with truncated BPTT written out by hand
(state carried, dropout on, clipping, the epoch's learning rate), report the
gradient norm *before* clipping, and train a small model on the built-in
corpus to a target validation perplexity.

The target: a 1-layer, 48-unit LSTM trained for two epochs on the first
100,000 training words of the built-in corpus (float32, no dropout; about
2 s on one CPU core) reaches a validation perplexity of 7.15-7.16 with the
reference code, whatever the seed (0-3 tried); the best possible, the
corpus's true entropy, is 6.90; a unigram model scores about 33, and the
first epoch alone ends near 8. The target, 7.6, leaves a margin of 0.45 for
rounding and platform differences, yet needs a second epoch of real
progress.
"""

import math

import numpy as np
import pytest
from assignment_helpers import rng
from test_training import RUN, FakeModel, check_evaluate_calls, expected_evaluation, quiet, run_train, tiny_corpus

import minilstm
from minilstm import training
from minilstm.config import get_config
from minilstm.data import Corpus, batchify, iterate_chunks, load_corpus
from minilstm.optim import clip_global_norm_, sgd_step_

TARGET_PPL = 7.6
TARGET_WORDS = 100_000
TARGET_RUN = dict(hidden_size=48, num_layers=1, epochs=2, max_epoch=1, num_steps=20, batch_size=20,
                  eval_batch_size=10, seed=0, dropout=0.0, dtype="float32")


def train_by_hand(corpus, **overrides):
    """Truncated BPTT, written out: returns the trained model and the gradient norms before clipping."""
    cfg = get_config("tiny", **{**RUN, **overrides})
    model = training.build_model(cfg, len(corpus.vocab))
    data = batchify(corpus.train, cfg.batch_size)
    norms = []
    for epoch in range(1, cfg.epochs + 1):
        state = None
        for x, y in iterate_chunks(data, cfg.num_steps):
            _, cache, state = model.forward(x, y, state, train=True)
            grads = model.backward(cache)
            norms.append(clip_global_norm_(grads, cfg.max_grad_norm))
            sgd_step_(model.params, grads, cfg.lr_at(epoch))
    return model, norms


@pytest.mark.part("training:evaluate")
@pytest.mark.parametrize("n,batch,steps", [(40, 1, 5), (101, 4, 3), (23, 2, 10)])
def test_evaluate_other_batchings(n, batch, steps):
    ids = rng(n).integers(0, 5, n)
    fake = FakeModel()
    res = training.evaluate(fake, ids, batch_size=batch, num_steps=steps)
    check_evaluate_calls(fake, ids, batch, steps)
    ppl, nll, count = expected_evaluation(ids, batch, steps, fake)
    if res.tokens != count or not math.isclose(res.perplexity, ppl, rel_tol=1e-12):
        raise AssertionError(f"evaluate: with batch_size={batch}, num_steps={steps} it reported perplexity "
                             f"{res.perplexity:.6f} over {res.tokens} words, expected {ppl:.6f} over {count}")


@pytest.mark.part("training:evaluate")
def test_evaluate_a_real_model_continues_the_stream():
    """One stream scored in chunks must equal the same stream scored at once: the state is carried."""
    model = minilstm.LSTMLanguageModel(9, hidden_size=5, num_layers=2, init_scale=0.5, dtype="float64", seed=2)
    ids = rng(3).integers(0, 9, 31)
    res = training.evaluate(model, ids, batch_size=1, num_steps=5)
    lp, _ = model.log_probs(ids[None, :30])
    nll = -float(np.take_along_axis(lp, ids[None, 1:31, None], axis=-1).sum())
    if not math.isclose(res.nll, nll, rel_tol=1e-9):
        raise AssertionError(f"evaluate: total NLL {res.nll:.6f} in chunks of 5, but {nll:.6f} when the 30 words "
                             "are scored at once; carry the state from chunk to chunk, dropout off")


@pytest.mark.part("training:loop")
def test_training_matches_truncated_bptt_by_hand():
    check_against_hand_training()


def check_against_hand_training():
    corpus = tiny_corpus(3)
    res = run_train(corpus)
    ref, norms = train_by_hand(corpus)
    worst, where = 0.0, None
    for name, p in ref.params.items():
        diff = float(np.max(np.abs(res.model.params[name] - p)) / max(np.max(np.abs(p)), 1e-12))
        if diff > worst:
            worst, where = diff, name
    if worst > 1e-9:
        raise AssertionError(
            f"train_step: after 2 epochs the weights differ from truncated BPTT done by hand (largest relative difference "
            f"{worst:.1e}, in {where}). Each chunk: forward from the previous chunk's state with dropout on, "
            "backward, clip the global norm to max_grad_norm, SGD step with this epoch's lr")
    n = len(norms) // 2
    for epoch, row in enumerate(res.history, start=1):
        want = sum(norms[(epoch - 1) * n:epoch * n]) / n
        if not math.isclose(row["grad_norm"], want, rel_tol=1e-9):
            raise AssertionError(f"train_step: epoch {epoch} reports a mean gradient norm {row['grad_norm']:.6f}, "
                                 f"expected {want:.6f}: gnorm must be the norm *before* clipping "
                                 "(what clip_global_norm_ returns)")


@pytest.mark.part("training:loop")
def test_one_backward_per_chunk(monkeypatch):
    counts = {"backward": 0}
    original = minilstm.LSTMLanguageModel.backward

    def spy(self, cache, dloss=1.0):
        counts["backward"] += 1
        return original(self, cache, dloss)

    monkeypatch.setattr(minilstm.LSTMLanguageModel, "backward", spy)
    corpus = tiny_corpus(4)
    res = run_train(corpus, epochs=1)
    steps = res.history[-1]["steps"]
    if counts["backward"] != steps:
        raise AssertionError(f"train_step: model.backward ran {counts['backward']} times in {steps} steps; "
                             "once per chunk")


@pytest.mark.part("training:loop")
def test_reaches_the_target_validation_perplexity_on_the_builtin_corpus():
    try:  # a fraction of a second; no need to spend seconds training a loop known to be wrong
        check_against_hand_training()
    except AssertionError:
        pytest.fail("train_step: the target perplexity was not attempted, because the training step is not right yet "
                    "(see the other messages of this part)")
    full = load_corpus("builtin")
    corpus = Corpus(name="builtin-100k", vocab=full.vocab, train=full.train[:TARGET_WORDS],
                    valid=full.valid[:5000], test=full.test[:1000])
    res = training.train("tiny", corpus=corpus, progress=False, log=quiet, evaluate_test=False, **TARGET_RUN)
    history = ", ".join(f"epoch {r['epoch']}: train {r['train_ppl']:.2f}, valid {r['valid_ppl']:.2f}"
                        for r in res.history)
    if not res.valid_ppl < TARGET_PPL:
        raise AssertionError(
            f"train_step: validation perplexity {res.valid_ppl:.2f} after 2 epochs on the built-in corpus, the target is "
            f"{TARGET_PPL} (a correct loop reaches about 7.2; a unigram model about 33) [{history}]")
