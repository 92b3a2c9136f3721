"""The epoch loop every experiment shares: steps, their bookkeeping, Ctrl-C between two steps.

An experiment says what one step is (``step(batch)``: forward, backward,
clipping, the update) and which batches an epoch has; this loop runs them from
where the run stands (``prog.chunk``, so a resumed run continues with the next
batch), keeps the epoch's running sums in ``prog`` (a runstate.Progress), stops
a run whose loss or gradient has blown up, and draws the progress bar.

Each step and its bookkeeping run inside ``guard.step()`` (interrupts.StepGuard):
a Ctrl-C takes effect between two steps, never inside one, so whoever catches
it saves exactly the boundary the loop reached.
"""

from __future__ import annotations

import math
import time

from .runstate import check_diverged


def perplexity(nll, count):
    """exp(nll / count), the perplexity; inf (not an OverflowError) for a diverged model."""
    try:
        return math.exp(nll / max(count, 1))
    except OverflowError:
        return math.inf


def run_epoch(prog, batches, step, guard, max_grad_norm, bar=None, on_step=None) -> None:
    """Run ``step`` on every batch of ``batches`` (the rest of epoch ``prog.epoch``), in order.

    step(batch) returns (loss, nll, count, gnorm): the loss the step minimised,
    the summed negative log-likelihood of the ``count`` tokens it predicted,
    and the global gradient norm before clipping. Raises FloatingPointError
    when the loss or the gradient norm blows up.
    """
    t0 = time.perf_counter()
    for batch in batches:
        with guard.step():  # one step and its bookkeeping are indivisible
            loss, nll, count, gnorm = step(batch)
            check_diverged(nll / max(count, 1), gnorm)
            prog.chunk += 1
            prog.step += 1
            prog.nll += nll
            prog.tokens += count
            prog.gnorm_sum += gnorm
            prog.gnorm_max = max(prog.gnorm_max, gnorm)
            prog.clipped += gnorm > max_grad_norm
            prog.time_s += time.perf_counter() - t0
            t0 = time.perf_counter()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(ppl=f"{perplexity(prog.nll, prog.tokens):.1f}",
                            tok_s=f"{prog.tokens / max(prog.time_s, 1e-9):,.0f}", refresh=False)
        if on_step is not None:
            on_step({"epoch": prog.epoch, "chunk": prog.chunk, "step": prog.step, "loss": loss})
    if bar is not None:
        bar.close()
