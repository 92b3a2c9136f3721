"""Visible tests of the ``training`` assignment: perplexity, and the truncated-BPTT training step.

Truncated BPTT in one paragraph: the training stream is cut into chunks of T
steps; each chunk starts from the (h, c) the previous chunk ended with, so the
model sees an unbroken stream, but the gradient stops at the chunk boundary.
Every epoch starts from a zero state. Each chunk is one forward, one backward,
one clipping of the global gradient norm, one SGD step.
"""

import math

import numpy as np
import pytest
from assignment_helpers import rng

import minilstm
from minilstm import training
from minilstm.data import Corpus, batchify, num_chunks


def quiet(*args, **kwargs):
    pass


def tiny_corpus(seed=0, V=12, n_train=600, n_valid=150):
    """A small corpus with some structure: mostly 'the next word is the current one plus one'."""
    r = rng(seed)
    ids = [0]
    for _ in range(n_train + 2 * n_valid):
        ids.append((ids[-1] + 1) % V if r.random() < 0.7 else int(r.integers(V)))
    ids = np.array(ids)
    return Corpus(name="tiny-test", vocab=[f"w{i}" for i in range(V)], train=ids[:n_train],
                  valid=ids[n_train:n_train + n_valid], test=ids[n_train + n_valid:])


# A float64 run with dropout on, two epochs and a learning-rate decay after the first.
RUN = dict(hidden_size=6, num_layers=2, num_steps=5, batch_size=4, epochs=2, max_epoch=1, lr=0.8, lr_decay=2.0,
           dropout=0.3, dtype="float64", eval_batch_size=2, seed=0, max_grad_norm=0.5)


def run_train(corpus, **overrides):
    return training.train("tiny", corpus=corpus, progress=False, log=quiet, evaluate_test=False,
                          **{**RUN, **overrides})


# ---------------------------------------------------------------------------- evaluate

class FakeModel:
    """Stands in for a model: records how evaluate calls it, returns made-up losses and states."""

    xp = np

    def __init__(self):
        self.calls = []

    def forward(self, x, y, state=None, train=True, rng=None, masks=None):
        k = len(self.calls)
        self.calls.append({"state": state, "train": train, "x": np.array(x), "y": np.array(y)})
        loss = 1.0 + 0.25 * k + 0.01 * float(np.sum(x) % 7)  # any numbers will do
        return loss, None, ("state after chunk", k)


def eval_chunks(ids, batch_size, num_steps):
    """The chunks evaluate must walk, in order: every word of every stream is scored, so the
    last chunk of a stream may be shorter than num_steps (training._eval_chunks, given)."""
    chunks, _ = training._eval_chunks(ids, batch_size, num_steps, np)
    return [(np.array(x), np.array(y)) for x, y in chunks]


def expected_evaluation(ids, batch_size, num_steps, fake):
    """(perplexity, total NLL, words) that evaluate must report for the FakeModel's losses."""
    losses = [1.0 + 0.25 * k + 0.01 * float(np.sum(c["x"]) % 7) for k, c in enumerate(fake.calls)]
    nll = sum(loss * c["x"].shape[0] for loss, c in zip(losses, fake.calls))  # loss: a mean over the N streams
    count = sum(y.size for _, y in eval_chunks(ids, batch_size, num_steps))
    return math.exp(nll / count), nll, count


def check_evaluate_calls(fake, ids, batch_size, num_steps):
    chunks = eval_chunks(ids, batch_size, num_steps)
    if len(fake.calls) != len(chunks):
        raise AssertionError(f"evaluate: model.forward was called {len(fake.calls)} times for {len(chunks)} chunks; "
                             "call it once per chunk")
    for k, (call, (x, y)) in enumerate(zip(fake.calls, chunks)):
        if call["train"]:
            raise AssertionError(f"evaluate: chunk {k} was run with train={call['train']}; evaluation runs "
                                 "without dropout: model.forward(x, y, state, train=False)")
        if not (np.array_equal(call["x"], x) and np.array_equal(call["y"], y)):
            raise AssertionError(f"evaluate: chunk {k} got the wrong tokens; feed the chunks in order")
        want = None if k == 0 else ("state after chunk", k - 1)
        if call["state"] != want:
            raise AssertionError(f"evaluate: chunk {k} started from state {call['state']!r}, expected {want!r}: "
                                 "start from None, then pass each chunk the state the previous one returned")


@pytest.mark.part("training:evaluate")
def test_evaluate_sums_the_loss_and_carries_the_state():
    ids = np.arange(61) % 9
    fake = FakeModel()
    res = training.evaluate(fake, ids, batch_size=3, num_steps=4)
    check_evaluate_calls(fake, ids, 3, 4)
    ppl, nll, count = expected_evaluation(ids, 3, 4, fake)
    if res.tokens != count:
        raise AssertionError(f"evaluate: counted {res.tokens} words, expected {count} (every target of every chunk)")
    if not math.isclose(res.nll, nll, rel_tol=1e-12):
        raise AssertionError(f"evaluate: total NLL {res.nll:.6f}, expected {nll:.6f}; model.forward returns the "
                             "loss averaged over the N streams, so multiply it by N before adding it up")
    if not math.isclose(res.perplexity, ppl, rel_tol=1e-12):
        raise AssertionError(f"evaluate: perplexity {res.perplexity:.6f}, expected exp(nll / words) = {ppl:.6f}")


@pytest.mark.part("training:evaluate")
def test_a_uniform_model_has_perplexity_V():
    V = 7
    model = minilstm.LSTMLanguageModel(V, hidden_size=4, num_layers=1, dtype="float64", seed=0)
    model.params["out.W"][...] = 0.0  # every score 0: the uniform distribution over V words
    model.params["out.b"][...] = 0.0
    res = training.evaluate(model, np.arange(50) % V, batch_size=2, num_steps=3)
    if not math.isclose(res.perplexity, V, rel_tol=1e-9):
        raise AssertionError(f"evaluate: a model that predicts every word with probability 1/{V} must have "
                             f"perplexity {V}, got {res.perplexity:.6f}")


# ---------------------------------------------------------------------------- loop

def forward_spy(monkeypatch):
    """Record the state every model.forward call starts from and the state it returns."""
    calls = []
    original = minilstm.LSTMLanguageModel.forward

    def spy(self, tokens, targets, state=None, train=True, rng=None, masks=None):
        out = original(self, tokens, targets, state, train=train, rng=rng, masks=masks)
        calls.append({"state": state, "train": train, "returned": out[2]})
        return out

    monkeypatch.setattr(minilstm.LSTMLanguageModel, "forward", spy)
    return calls


def no_evaluation(monkeypatch):
    """Replace evaluate so that every model.forward call seen comes from the training loop."""
    monkeypatch.setattr(training, "evaluate", lambda *a, **k: training.EvalResult(1.0, 0.0, 1))


@pytest.mark.part("training:loop")
def test_state_is_carried_across_chunks_and_reset_every_epoch(monkeypatch):
    corpus = tiny_corpus(1)
    no_evaluation(monkeypatch)
    calls = forward_spy(monkeypatch)
    run_train(corpus)
    n = num_chunks(batchify(corpus.train, RUN["batch_size"]), RUN["num_steps"])
    if len(calls) != 2 * n:
        raise AssertionError(f"train_step: model.forward ran {len(calls)} times in 2 epochs of {n} chunks; "
                             "run it once per chunk")
    for k, call in enumerate(calls):
        epoch, chunk = k // n + 1, k % n
        if not call["train"]:
            raise AssertionError(f"train_step: chunk {chunk} of epoch {epoch} ran with train=False: training uses "
                                 "dropout, pass train=True")
        if chunk == 0:
            if call["state"] is not None:
                raise AssertionError(f"train_step: epoch {epoch} did not start from a zero state (state=None)")
            continue
        prev = calls[k - 1]["returned"]
        same = call["state"] is not None and all(np.array_equal(a, b) for a, b in zip(call["state"], prev))
        if not same:
            raise AssertionError(f"train_step: chunk {chunk} of epoch {epoch} did not start from the state chunk "
                                 f"{chunk - 1} returned; keep the new_state from model.forward and pass it to the "
                                 "next chunk (truncated BPTT carries the state, not the gradient)")


@pytest.mark.part("training:loop")
def test_gradients_are_clipped_before_the_sgd_step(monkeypatch):
    corpus = tiny_corpus(2)
    no_evaluation(monkeypatch)
    models, moves, snapshot = [], [], {}
    build = training.build_model

    def capture(*args, **kwargs):  # keep the model train() builds, and its initial weights
        models.append(build(*args, **kwargs))
        snapshot.update({k: v.copy() for k, v in models[0].params.items()})
        return models[0]

    def on_step(info):
        params = models[0].params
        moves.append(math.sqrt(sum(float(np.sum((params[k] - snapshot[k]) ** 2)) for k in params)))
        snapshot.update({k: v.copy() for k, v in params.items()})

    monkeypatch.setattr(training, "build_model", capture)
    clip, lr = 1e-3, 0.5
    run_train(corpus, epochs=1, dropout=0.0, max_grad_norm=clip, lr=lr, on_step=on_step)
    for step, move in enumerate(moves, start=1):
        if move == 0.0:
            raise AssertionError(f"train_step: step {step} did not change the weights; take an SGD step "
                                 "(sgd_step_(model.params, grads, lr))")
        if not math.isclose(move, lr * clip, rel_tol=1e-6):
            raise AssertionError(
                f"train_step: step {step} moved the weights by {move:.3e} (global norm), expected lr * max_grad_norm "
                f"= {lr * clip:.3e}: these gradients are far larger than max_grad_norm, so they must be clipped "
                "(clip_global_norm_(grads, max_grad_norm)) before the step with the epoch's lr")
