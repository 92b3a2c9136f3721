"""The paper's Table 4 in miniature: image captions, one model without and with dropout, and an ensemble.

    minilstm caption [--out runs/caption] [--quick] [--seeds 3] [--members 10] [--jobs 2]
    minilstm caption --ensemble RUN RUN ...     the averaged model of these checkpoints, on the test set

Zaremba et al. (2014, section 4.4) regularized Vinyals et al.'s Show-and-Tell captioner on MSCOCO and
reported, on the test set:

    | model                              | test perplexity | test BLEU |
    |------------------------------------|-----------------|-----------|
    | non-regularized                    | 8.47            | 23.5      |
    | regularized (D)                    | 7.99            | 24.3      |
    | 10 non-regularized, ensemble       | 7.5             | 24.4      |

Their point: one regularized model is about as good as an ensemble of ten unregularized ones, at a
tenth of the cost. This command runs the same three rows on captions of handwritten digits
(data/digits.py: three 8x8 digits side by side, captions in three phrasings, disjoint image pools
for train/valid/test) with the captioning model of models/caption.py: ``--members`` non-regularized
seeds (their mean ± sd is the single-model row, all of them together the ensemble, probabilities
averaged: models/ensemble.py), and ``--seeds`` regularized ones (dropout 0.5 on the non-recurrent
connections, ``zaremba``). Each is trained with Adam and gradient clipping at 5, early stopping on
validation perplexity (experiments/runner.py), then scored on the test images:

- test perplexity (teacher forced; the floor any model can reach is printed beside it);
- BLEU, by sacreBLEU from the written files, against all three phrasings as references
  (``test.ref0.txt`` .. ``test.ref2.txt``), of greedy decoding and of a beam of 3;
- digit accuracy: the share of test images whose greedy caption names all three digits right.

It writes into ``--out``: one run folder per model (checkpoints, metrics, ``summary.json``, the
captions ``test.greedy.txt`` and ``test.beam3.txt``), ``ensemble/`` (its captions and summary),
the references, ``results.json``, ``results.md`` (beside the paper's Table 4) and ``validation.png``.
Run it again to resume: finished runs are skipped, an interrupted one continues bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from pathlib import Path

from .. import runfolder
from ..checkpoint import CheckpointError, check_compatible, load_checkpoint
from ..data.digits import (CaptionCorpus, batch_captions, caption_digits, corpus_hash, make_digit_captions,
                           PHRASINGS)
from ..decoding import beam_search, greedy_decode
from ..loop import perplexity
from ..models.caption import CaptionModel
from ..models.ensemble import Ensemble, check_same_setting
from ..runstate import check_params
from . import runner
from .bleu import bleu_from_files

# The paper's Table 4 (MSCOCO, Show-and-Tell with a 1-layer LSTM).
PAPER = {"non-regularized": {"test_ppl": 8.47, "bleu": 23.5}, "regularized": {"test_ppl": 7.99, "bleu": 24.3},
         "ensemble": {"test_ppl": 7.5, "bleu": 24.4}}
METHODS = runner.METHODS  # non-regularized first, then regularized
BEAM = 3           # Vinyals et al. settled on a small beam for captions
MAX_LEN = 10       # the most words a decoded caption may have, <eos> included (captions have 5 or 6 + 1)
DECODE_BATCH = 250
DATA_SEED = 0      # the corpus is the same for every run; the seeds vary the models
DROPOUT = 0.5


@dataclass(frozen=True)
class CaptionConfig:
    """One run's recipe. ``dropout`` is 0 for the non-regularized model."""

    name: str = "caption"
    hidden_size: int = 256      # H (also the word embedding and the image projection's size)
    num_layers: int = 1         # L: one layer, as Show-and-Tell
    dropout: float = 0.0        # p on the non-recurrent connections (``dropout_mode``)
    dropout_mode: str = "zaremba"
    init_scale: float = 0.08
    lr: float = 2e-3            # Adam's step size, constant
    max_grad_norm: float = 5.0  # the paper's clipping
    batch_size: int = 32        # captions per batch
    epochs: int = 100           # at most: early stopping ends every run first (20-60 epochs)
    patience: int = 8           # epochs without a better validation perplexity before stopping
    seed: int = 0
    dtype: str = "float32"
    train_images: int = 0       # the first K training composites (0 = all)
    eval_images: int = 0        # the first K validation and test composites (0 = all)

    def lr_at(self, epoch: int) -> float:
        return self.lr

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FULL: dict = dict()
# Quick: big steps on a fifth of the data, enough to learn the phrasings (BLEU above 0) in about a second a run.
QUICK = dict(hidden_size=32, epochs=4, patience=2, lr=1e-2, train_images=200, eval_images=40, batch_size=10)


def validate(cfg: CaptionConfig, where="caption config") -> None:
    runner.validate_config(cfg, where, counts=("hidden_size", "num_layers", "batch_size", "epochs", "patience"),
                           nonneg=("seed", "train_images", "eval_images"),
                           positive=("lr", "max_grad_norm", "init_scale"))


def config_from_dict(d, where="config") -> CaptionConfig:
    return runner.config_from_dict(CaptionConfig, d, where, validate, "caption")


# ---------------------------------------------------------------------------
# Data and evaluation
# ---------------------------------------------------------------------------

def load_data() -> CaptionCorpus:
    return make_digit_captions(DATA_SEED)


def _first(split, k):
    if not k:
        return split
    return dataclasses.replace(split, features=split.features[:k], digits=split.digits[:k],
                               captions=split.captions[:k], phrasing=split.phrasing[:k], sources=split.sources[:k])


def splits(corpus, cfg):
    return (_first(corpus.train, cfg.train_images), _first(corpus.valid, cfg.eval_images),
            _first(corpus.test, cfg.eval_images))


def evaluate_perplexity(model, split, batch_size=250) -> float:
    """exp(NLL / tokens, <eos> included) over ``split``, dropout off, teacher forced; ``model`` may be an
    Ensemble (then the probabilities are averaged)."""
    xp = model.xp
    nll = count = 0.0
    for batch in batch_captions(split, batch_size, dtype=_dtype(model)):
        n, c = model.nll(*(xp.asarray(a) for a in batch))
        nll, count = nll + n, count + c
    return perplexity(nll, count)


def _dtype(model):
    return (model.models[0] if isinstance(model, Ensemble) else model).dtype


def caption_images(model, features, beam=1) -> list:
    """The word ids (without <eos>) of each image's caption: greedy for beam 1, else beam search."""
    out: list = []
    for i in range(0, len(features), DECODE_BATCH):
        rows = model.xp.asarray(features[i:i + DECODE_BATCH].astype(_dtype(model)))
        part = list(rows)
        out += (greedy_decode(model, part, max_len=MAX_LEN) if beam == 1
                else beam_search(model, part, beam_size=beam, max_len=MAX_LEN))
    return out


def digit_accuracy(hyps, digits) -> float:
    """Percent of captions that name exactly the image's digits, in order."""
    right = sum(caption_digits(h) == [int(d) for d in row] for h, row in zip(hyps, digits))
    return 100.0 * right / max(len(hyps), 1)


def write_references(out_dir, corpus, test) -> list[Path]:
    """test.ref{k}.txt: every test image's caption in phrasing k (the multi-reference BLEU's references)."""
    paths = []
    refs = test.references()
    for k in range(len(PHRASINGS)):
        path = Path(out_dir) / f"test.ref{k}.txt"
        text = "".join(" ".join(corpus.decode(r[k])) + "\n" for r in refs)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            runfolder.write_text(path, text)
        paths.append(path)
    return paths


def evaluate_test(model, run_dir, corpus, test, log, summary) -> dict:
    """Test perplexity, BLEU (greedy and beam) from written files, digit accuracy; writes summary.json."""
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    summary = {**summary, "test_ppl": evaluate_perplexity(model, test)}
    refs = write_references(run_dir.parent, corpus, test)
    for beam, key in ((1, "greedy"), (BEAM, f"beam{BEAM}")):
        hyps = caption_images(model, test.features, beam)
        path = run_dir / f"test.{key}.txt"
        runfolder.write_text(path, "".join(" ".join(corpus.decode(h)) + "\n" for h in hyps))
        summary[f"bleu_{key}"] = bleu_from_files(path, *refs)["bleu"]
        summary[f"digits_{key}"] = digit_accuracy(hyps, test.digits)
    summary["eval_time_s"] = time.perf_counter() - t0
    runfolder.write_json(run_dir / "summary.json", summary)
    log(f"{run_dir.name}: test ppl {summary['test_ppl']:.3f}  BLEU greedy {summary['bleu_greedy']:.1f}  "
        f"beam {BEAM} {summary[f'bleu_beam{BEAM}']:.1f}  all digits right {summary['digits_greedy']:.1f}%")
    return summary


SUMMARY_KEYS = ("test_ppl", "bleu_greedy", f"bleu_beam{BEAM}", "digits_greedy", f"digits_beam{BEAM}")


# ---------------------------------------------------------------------------
# One run, and the ensemble
# ---------------------------------------------------------------------------

def build_model(cfg: CaptionConfig, corpus: CaptionCorpus, device=None) -> CaptionModel:
    return CaptionModel(corpus.num_features, corpus.vocab_size, corpus.eos_id, cfg.hidden_size, cfg.num_layers,
                        dropout=cfg.dropout, dropout_mode=cfg.dropout_mode, init_scale=cfg.init_scale,
                        dtype=cfg.dtype, device=device, seed=cfg.seed)


def train_run(cfg: CaptionConfig, corpus: CaptionCorpus, run_dir, log=print, progress=False, device=None,
              on_step=None) -> dict:
    """Train one captioner into ``run_dir`` (resuming from its last.npz), then score its best.npz on the test set.

    Returns its summary (also ``run_dir/summary.json``), or {"interrupted": True} after a Ctrl-C.
    """
    validate(cfg)
    run_dir = Path(run_dir)
    if (run_dir / "summary.json").is_file():
        return runner.read_summary(run_dir, ("valid_ppl", "train_ppl", "epochs") + SUMMARY_KEYS)
    train, valid, test = splits(corpus, cfg)
    model = build_model(cfg, corpus, device)
    meta = {"vocab": list(corpus.vocab), "eos_id": corpus.eos_id, "num_features": corpus.num_features}

    def epoch_batches(rng):
        return batch_captions(train, cfg.batch_size, dtype=cfg.dtype, rng=rng)

    history = runner.fit(run_dir, cfg, model, corpus_hash(corpus), meta, epoch_batches,
                         lambda m: {"valid_ppl": evaluate_perplexity(m, valid)}, log, progress, on_step,
                         unit="words")
    if history is None:
        return {"interrupted": True}
    runner.load_best(run_dir, model)
    return evaluate_test(model, run_dir, corpus, test, log, runner.history_summary(cfg, history))


def load_caption_model(path, device=None, data_hash=None) -> tuple[CaptionModel, dict]:
    """A trained captioner from a checkpoint (a .npz or a run folder's best.npz), every field checked."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.npz"
    if not path.is_file():
        raise CheckpointError(f"no caption model at {path}: give a .npz or a run folder with best.npz")
    ck = load_checkpoint(path)
    meta = ck.meta
    if meta.get("kind") != CaptionModel.kind:
        raise CheckpointError(f"{path} is not a caption model (its kind is {meta.get('kind')!r}); "
                              "use checkpoints that `minilstm caption` trained")
    try:
        cfg = config_from_dict(meta.get("config"), f"{path}: config")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc
    vocab, eos, F = meta.get("vocab"), meta.get("eos_id"), meta.get("num_features")
    if not (isinstance(vocab, list) and vocab and all(isinstance(w, str) for w in vocab)
            and isinstance(eos, int) and 0 <= eos < len(vocab) and isinstance(F, int) and F > 0):
        raise CheckpointError(f"{path}: its vocabulary or feature size is damaged; retrain")
    model = CaptionModel(F, len(vocab), eos, cfg.hidden_size, cfg.num_layers, dropout=cfg.dropout,
                         dropout_mode=cfg.dropout_mode, init_scale=cfg.init_scale, dtype=cfg.dtype,
                         device=device, seed=cfg.seed)
    check_compatible(meta, data_hash, {k: v.shape for k, v in model.params.items()})
    check_params(ck, model, path)
    model.params = {k: model.xp.asarray(v) for k, v in ck.params.items()}
    return model, meta


def load_ensemble(paths, device=None, data_hash=None) -> Ensemble:
    """The probability-averaging ensemble of these checkpoints; refuses (one line) models of other kinds,
    vocabularies or data."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("an ensemble needs at least one checkpoint")
    loaded = [load_caption_model(p, device, data_hash) for p in paths]
    try:
        check_same_setting([meta for _, meta in loaded], [str(p) for p in paths])
        return Ensemble([m for m, _ in loaded], vocab=loaded[0][1]["vocab"])
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc


def ensemble_run(out_dir, members, corpus, test, log=print, device=None) -> dict:
    """The ensemble of the finished runs ``members`` (folder names), scored as one model into out_dir/ensemble."""
    run_dir = Path(out_dir) / "ensemble"
    if (run_dir / "summary.json").is_file():
        summary = runner.read_summary(run_dir, SUMMARY_KEYS)
        if summary.get("members") == list(members):
            return summary
    run_dir.mkdir(parents=True, exist_ok=True)
    ensemble = load_ensemble([Path(out_dir) / m for m in members], device, corpus_hash(corpus))
    return evaluate_test(ensemble, run_dir, corpus, test, log, {"members": list(members)})


# ---------------------------------------------------------------------------
# The experiment
# ---------------------------------------------------------------------------

def run_configs(seeds=3, members=10, quick=False, **overrides) -> list:
    """[(folder name, method, CaptionConfig)]: ``members`` non-regularized seeds, then ``seeds`` regularized."""
    runner.whole_number(seeds, "--seeds", 1, 100)
    runner.whole_number(members, "--members", 1, 100)
    base = dataclasses.replace(CaptionConfig(), **{**(QUICK if quick else FULL),
                                                   **{k: v for k, v in overrides.items() if v is not None}})
    return runner.method_runs(base, dict(zip(METHODS, (members, seeds))), DROPOUT, "caption", validate)


def _run_one(name, job, in_worker, corpus=None, log=print):
    """One run (runner.run_all); a worker process builds its own corpus (the same, from the same seed) and
    logs line by line."""
    cfg, out_dir, device, progress = job
    corpus = corpus if corpus is not None else load_data()
    log = runner.worker_log if in_worker else log
    return train_run(cfg, corpus, Path(out_dir) / name, log, progress and not in_worker, device)


def run_caption(out_dir="runs/caption", seeds=3, members=10, quick=False, jobs=1, device=None, progress=True,
                log=print, **overrides) -> dict:
    """The whole experiment (module docstring). Returns {"rows", "ensemble", "table", "interrupted"}."""
    out_dir = runner.check_out_dir(out_dir)
    runner.whole_number(jobs, "--jobs", 1, 64)
    runs = run_configs(seeds, members, quick, **overrides)
    corpus = load_data()
    settings = {"data": corpus.name, "data_hash": corpus_hash(corpus), "quick": bool(quick),
                "runs": {name: cfg.to_dict() for name, _, cfg in runs}}
    runner.claim_experiment(out_dir, settings, "caption")
    t0 = time.perf_counter()
    log(f"captions ({corpus.description}): {len(runs)} runs ({members} non-regularized, {seeds} regularized) and "
        f"the {members}-model ensemble, into {out_dir}" + (f", {jobs} at a time" if jobs > 1 else ""))
    todo = [(name, (cfg, str(out_dir), device, progress)) for name, _, cfg in runs]
    run_one = _run_one if jobs > 1 else functools.partial(_run_one, corpus=corpus, log=log)
    summaries, interrupted = runner.run_all(todo, run_one, jobs, log)
    if interrupted:
        log("interrupted: run the same command again to continue where each run stopped")
        return {"interrupted": True}
    member_names = [name for name, method, _ in runs if method == METHODS[0]]
    test = splits(corpus, runs[0][2])[2]
    ens = ensemble_run(out_dir, member_names, corpus, test, log, device)
    keys = ("train_ppl", "valid_ppl") + SUMMARY_KEYS + ("epochs", "best_epoch", "train_time_s")
    rows = [{"method": method, "seed": cfg.seed, "run": name, **{k: summaries[name][k] for k in keys}}
            for name, method, cfg in runs]
    ens_row = {"method": "ensemble", "members": member_names, **{k: ens[k] for k in SUMMARY_KEYS}}
    result = {"paper": PAPER, "best_perplexity": corpus.best_perplexity, "data": corpus.name,
              "description": corpus.description, "rows": rows, "ensemble": ens_row,
              "bleu_signature": bleu_from_files(out_dir / rows[0]["run"] / "test.greedy.txt",
                                                *write_references(out_dir, corpus, test))["signature"],
              "wall_time_s": time.perf_counter() - t0}
    runfolder.write_json(out_dir / "results.json", result)
    table = results_table(result)
    runfolder.write_text(out_dir / "results.md", table)
    try:
        plot_validation(out_dir, runs, corpus.best_perplexity.get("valid"))
    except Exception as exc:  # a figure must never cost a finished experiment
        log(f"(could not draw the figure: {exc})")
    return {"interrupted": False, "rows": rows, "ensemble": ens_row, "table": table, "out_dir": out_dir}


def results_table(result: dict) -> str:
    """The markdown table beside the paper's Table 4, and what it says."""
    beam = f"bleu_beam{BEAM}"
    lines = ["| model | paper: test ppl | paper: BLEU | test ppl | BLEU greedy | BLEU beam 3 | all digits right "
             "(greedy) | runs |", "|---|---|---|---|---|---|---|---|"]
    cells = {}
    for method in METHODS:
        rows = [r for r in result["rows"] if r["method"] == method]
        if not rows:
            continue
        c = {}
        for key, digits in (("test_ppl", 3), ("bleu_greedy", 1), (beam, 1), ("digits_greedy", 1)):
            mean, sd = runner.mean_sd([r[key] for r in rows])
            c[key] = (mean, f"{mean:.{digits}f} ± {sd:.{digits}f}")
        cells[method] = c
        label = f"{method} (dropout {'0' if method == METHODS[0] else DROPOUT})"
        paper = result["paper"][method]
        lines.append(f"| {label} | {paper['test_ppl']} | {paper['bleu']} | {c['test_ppl'][1]} | "
                     f"{c['bleu_greedy'][1]} | {c[beam][1]} | {c['digits_greedy'][1]}% | {len(rows)} seeds |")
    ens = result["ensemble"]
    paper = result["paper"]["ensemble"]
    lines.append(f"| {len(ens['members'])} non-regularized, ensemble | {paper['test_ppl']} | {paper['bleu']} | "
                 f"{ens['test_ppl']:.3f} | {ens['bleu_greedy']:.1f} | {ens[beam]:.1f} | {ens['digits_greedy']:.1f}% | "
                 "1 (probabilities averaged) |")
    best = result.get("best_perplexity") or {}
    notes = ["Single-model rows: mean ± sd over the seeds; the ensemble averages the probabilities of all the "
             "non-regularized seeds. The paper: MSCOCO, one 1-layer LSTM per row."]
    if best:
        notes.append(f"Best achievable test perplexity: {best['test']:.3f} (every digit read right; only the "
                     "1-in-3 phrasing left to chance).")
    notes.append(f"BLEU by sacreBLEU ({result['bleu_signature']}) of the files test.*.txt against the three "
                 "phrasings test.ref0.txt .. test.ref2.txt.")
    if "regularized" in cells and "non-regularized" in cells:
        reg, plain = cells["regularized"]["test_ppl"][0], cells["non-regularized"]["test_ppl"][0]
        gap, gain = reg - ens["test_ppl"], plain - ens["test_ppl"]
        if gain > 0 and gap <= 0:
            verdict = "is as good as the ensemble or better, with one model instead of ten"
        elif gain > 0 and gap <= 0.25 * gain:
            verdict = "comes near the ensemble (within a quarter of the ensemble's gain over one plain model)"
        elif reg < plain:
            verdict = "improves on one plain model but does not come near the ensemble"
        else:
            verdict = "does not improve on one plain model here"
        bleu = {m: cells[m][beam][0] for m in METHODS}
        notes.append(f"Test perplexity: one plain model {plain:.3f}, one regularized model {reg:.3f}, the ensemble "
                     f"{ens['test_ppl']:.3f}: the regularized single model {verdict}. BLEU (beam {BEAM}): "
                     f"{bleu[METHODS[0]]:.1f}, {bleu[METHODS[1]]:.1f} and {ens[beam]:.1f}"
                     + (" (the ensemble ahead)." if ens[beam] > bleu[METHODS[1]] else "."))
        cost = {m: [r["train_time_s"] for r in result["rows"] if r["method"] == m] for m in METHODS}
        notes.append(f"Training time: the ensemble's {len(cost[METHODS[0]])} members {sum(cost[METHODS[0]]):.0f} s "
                     f"in all, one regularized model {runner.mean_sd(cost[METHODS[1]])[0]:.0f} s on average (it "
                     "trains for more epochs before early stopping); decoding with the ensemble runs every member "
                     "at every step.")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def plot_validation(out_dir, runs, best=None) -> Path | None:
    """validation.png: the validation perplexity of every run per epoch (one line a seed), the floor dotted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..plots import epoch_rows, read_metrics, save_figure, style_epoch_axes

    out_dir = Path(out_dir)
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = {"non-regularized": "black", "regularized": "tab:blue"}
    labelled = set()
    for name, method, _ in runs:
        rows = [r for r in epoch_rows(read_metrics(out_dir / name)) if math.isfinite(r["valid_ppl"])]
        if rows:
            ax.plot([r["epoch"] for r in rows], [r["valid_ppl"] for r in rows], color=colours[method], alpha=0.7,
                    label=None if method in labelled else method)
            labelled.add(method)
    if not labelled:
        return None
    if best:
        ax.axhline(best, color="grey", linestyle=":", label=f"best achievable ({best:.2f})")
    style_epoch_axes(ax, "Captions: validation perplexity (each line a seed)", "perplexity (log scale)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_dir / "validation.png", dpi=110)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def add_cli(sub):
    """Register ``minilstm caption`` (cli.py calls this)."""
    from ..cliargs import add_device_flags, int_arg, path_arg

    p = sub.add_parser(
        "caption", help="the paper's Table 4 in miniature: captions of digit images, without and with dropout, "
                        "and a 10-model ensemble",
        description=__doc__.split("\n\n")[0].rstrip(".") + ": trains the non-regularized models (the ensemble's "
        "members) and the regularized ones, then writes test perplexity, BLEU and digit accuracy beside the "
        "paper's. Run it again to resume where it stopped. With --ensemble, scores the averaged model of the "
        "checkpoints given instead.")
    p.add_argument("--out", type=path_arg, default="runs/caption", help="output folder (default runs/caption)")
    p.add_argument("--quick", action="store_true", help="a tiny setting that runs in seconds (for tests)")
    p.add_argument("--seeds", type=int_arg(1, 100), default=3, help="regularized seeds (default 3)")
    p.add_argument("--members", type=int_arg(1, 100), default=10,
                   help="non-regularized seeds, the ensemble's members (default 10)")
    p.add_argument("--jobs", type=int_arg(1, 64), default=1,
                   help="runs side by side, one BLAS thread each (default 1; 2 on a 2-core machine is faster)")
    p.add_argument("--hidden", type=int_arg(1, 100_000), help="hidden units H (default 256)")
    p.add_argument("--epochs", type=int_arg(1, 100_000), help="at most this many epochs (default 100; early stopping ends runs sooner)")
    p.add_argument("--ensemble", nargs="+", type=path_arg, metavar="RUN",
                   help="score the probability-averaged ensemble of these checkpoints (.npz or run folders) "
                        "on the test images")
    add_device_flags(p)
    p.set_defaults(func=_cmd_caption)


def _cmd_caption(args):
    if args.ensemble:
        corpus = load_data()
        ensemble = load_ensemble(args.ensemble, args.device, corpus_hash(corpus))
        test = corpus.test
        hyps = caption_images(ensemble, test.features)
        print(f"ensemble of {len(ensemble)}: test ppl {evaluate_perplexity(ensemble, test):.3f}  "
              f"all digits right (greedy) {digit_accuracy(hyps, test.digits):.1f}%")
        return 0
    res = run_caption(args.out, args.seeds, args.members, args.quick, args.jobs, args.device,
                      progress=not args.no_progress, hidden_size=args.hidden, epochs=args.epochs)
    if res["interrupted"]:
        return 130
    print(res["table"], end="")
    print(f"saved in {res['out_dir']}: results.md, results.json, validation.png, the test captions in each run "
          "folder and in ensemble/")
    return 0


__all__ = ["run_caption", "train_run", "CaptionConfig", "load_ensemble", "evaluate_perplexity", "add_cli"]
