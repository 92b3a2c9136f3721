"""The paper's Table 3 in miniature: translation, without and with dropout.

    minilstm translate [--out runs/translate] [--quick] [--seeds 3] [--jobs 2]
    minilstm translate --model runs/translate "the boy eats an apple"

Zaremba et al. (2014) trained a 4x1000 LSTM on WMT'14 English->French as a
conditional language model (minilstm/models/translation.py) and reported,
on the test set:

    | model            | test perplexity | test BLEU |
    |------------------|-----------------|-----------|
    | non-regularized  | 5.8             | 25.9      |
    | regularized (D)  | 5.0             | 29.03     |

This command runs the same comparison on the built-in synthetic
English->French corpus (minilstm/data/parallel.py: a grammar with agreement,
adjective order, tenses, negation and target-side synonyms, whose best
achievable perplexity is known), or on your own parallel text
(``--data-dir``): the same architecture trained without dropout and with D on
the non-recurrent connections (``zaremba``), each with several seeds, early
stopping on validation perplexity; then the test perplexity of each best
checkpoint and its test BLEU with greedy decoding and with a beam of 12
(minilstm/decoding.py), BLEU computed by sacreBLEU from the written files.

It writes into ``--out``: one run folder per method and seed (``last.npz``,
``best.npz``, ``metrics.jsonl``, ``summary.json``, the test translations
``test.greedy.txt`` and ``test.beam12.txt``), the references ``test.ref.txt``,
``results.json`` (one row per method and seed), ``results.md`` (mean ± sd
beside the paper's Table 3) and ``validation.png``. Run it again to resume
where it stopped: a finished run is skipped, an interrupted one continues
from its ``last.npz``, bit for bit.

The optimizer is Adam (optim.py; the plain SGD of the language model needed
many more epochs here), with the gradient norm clipped at 5 as in the paper.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import runfolder
from ..checkpoint import CheckpointError, check_compatible, load_checkpoint
from ..data import DataError
from ..data.parallel import (ParallelCorpus, batch_pairs, load_parallel, make_builtin_parallel,
                             parallel_vocab_hash)
from ..decoding import beam_search, greedy_decode
from ..loop import perplexity
from ..models.translation import TranslationModel
from ..runstate import check_params
from . import runner
from .bleu import bleu_from_files
from .runner import validate_config

# The paper's Table 3 (WMT'14 En->Fr, 4x1000 LSTM, dropout 0.2 when regularized).
PAPER = {"non-regularized": {"test_ppl": 5.8, "bleu": 25.9}, "regularized": {"test_ppl": 5.0, "bleu": 29.03}}
METHODS = runner.METHODS  # non-regularized first, then regularized
BEAM = 12  # the paper's beam
DECODE_BATCH = 100  # sentences decoded together (x 12 hypotheses each)


@dataclass(frozen=True)
class TranslateConfig:
    """One run's recipe. ``dropout`` is 0 for the non-regularized model."""

    name: str = "translate"
    hidden_size: int = 256      # H (also the embedding size)
    num_layers: int = 2         # L
    dropout: float = 0.0        # p on the non-recurrent connections (``dropout_mode``)
    dropout_mode: str = "zaremba"
    init_scale: float = 0.08    # uniform in [-s, s], as Sutskever et al.
    lr: float = 2e-3            # Adam's step size, constant
    max_grad_norm: float = 5.0  # clip the global gradient norm, as in the paper
    batch_size: int = 32        # sentence pairs per batch
    epochs: int = 80            # at most: early stopping usually ends a run first
    patience: int = 6           # stop after this many epochs without a better validation perplexity
    seed: int = 0
    dtype: str = "float32"
    train_pairs: int = 0        # the first K training pairs (0 = all)
    eval_pairs: int = 0         # the first K validation and test pairs (0 = all)

    def lr_at(self, epoch: int) -> float:
        return self.lr

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The regularized model's dropout, and the sizes of the full and the quick (test) setting.
DROPOUT = 0.3
FULL: dict = dict()
QUICK = dict(hidden_size=32, num_layers=1, epochs=2, patience=2, train_pairs=160, eval_pairs=40, batch_size=16)


def validate(cfg: TranslateConfig, where="translate config") -> None:
    """Refuse any field of the wrong type, out of range or not finite, naming it."""
    validate_config(cfg, where, counts=("hidden_size", "num_layers", "batch_size", "epochs", "patience"),
                    nonneg=("seed", "train_pairs", "eval_pairs"), positive=("lr", "max_grad_norm", "init_scale"))


def config_from_dict(d, where="config") -> TranslateConfig:
    return runner.config_from_dict(TranslateConfig, d, where, validate, "translate")


# ---------------------------------------------------------------------------
# Data and evaluation
# ---------------------------------------------------------------------------

def load_data(data_dir=None) -> ParallelCorpus:
    """The built-in synthetic corpus, or the user's parallel text in ``data_dir``."""
    return make_builtin_parallel() if data_dir is None else load_parallel(data_dir)


def _splits(corpus, cfg):
    def first(pairs, k):
        return pairs[:k] if k else pairs
    train, valid, test = first(corpus.train, cfg.train_pairs), first(corpus.valid, cfg.eval_pairs), \
        first(corpus.test, cfg.eval_pairs)
    for name, pairs in (("train", train), ("valid", valid), ("test", test)):
        if not pairs:
            raise DataError(f"the {name} split is empty; give it at least one sentence pair")
    return train, valid, test


def evaluate_perplexity(model: TranslationModel, pairs, batch_size=64) -> float:
    """exp(target NLL / target tokens incl. <eos>) over ``pairs``, dropout off, teacher forced."""
    xp = model.xp
    nll = count = 0.0
    for inputs, targets, weights in batch_pairs(pairs, batch_size, model.Vs, model.eos, dtype=model.dtype):
        n, c = model.nll(xp.asarray(inputs), xp.asarray(targets), xp.asarray(weights))
        nll, count = nll + n, count + c
    return perplexity(nll, count)


def translate_ids(model: TranslationModel, sources, beam=1) -> list:
    """Target ids (without <eos>) for each source: greedy for beam 1, else beam search."""
    out: list = []
    for i in range(0, len(sources), DECODE_BATCH):
        part = list(sources[i:i + DECODE_BATCH])
        out += greedy_decode(model, part) if beam == 1 else beam_search(model, part, beam_size=beam)
    return out


# ---------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------

def build_model(cfg: TranslateConfig, corpus: ParallelCorpus, device=None) -> TranslationModel:
    Vs, Vt = corpus.sizes
    return TranslationModel(Vs, Vt, corpus.eos_id, cfg.hidden_size, cfg.num_layers, dropout=cfg.dropout,
                            dropout_mode=cfg.dropout_mode, init_scale=cfg.init_scale, dtype=cfg.dtype,
                            device=device, seed=cfg.seed)


def train_run(cfg: TranslateConfig, corpus: ParallelCorpus, run_dir, log=print, progress=False, device=None,
              on_step=None) -> dict:
    """Train one model into ``run_dir`` (resuming from its last.npz), then evaluate its best.npz on the test set.

    Returns the run's summary (also in ``run_dir/summary.json``), or one with
    ``"interrupted": True`` after a Ctrl-C (last.npz then holds the step boundary reached).
    """
    validate(cfg)
    run_dir = Path(run_dir)
    if (run_dir / "summary.json").is_file():
        return _read_summary(run_dir)
    train, valid, test = _splits(corpus, cfg)
    model = build_model(cfg, corpus, device)
    meta = {"src_vocab": list(corpus.src_vocab), "tgt_vocab": list(corpus.tgt_vocab), "eos_id": model.eos}

    def epoch_batches(rng):
        return batch_pairs(train, cfg.batch_size, model.Vs, model.eos, dtype=cfg.dtype, rng=rng)

    history = runner.fit(run_dir, cfg, model, parallel_vocab_hash(corpus), meta, epoch_batches,
                         lambda m: {"valid_ppl": evaluate_perplexity(m, valid)}, log, progress, on_step,
                         unit="target words")
    if history is None:
        return {"interrupted": True}
    return _evaluate_run(run_dir, cfg, corpus, model, history, test, log)


def _evaluate_run(run_dir, cfg, corpus, model, history, test, log) -> dict:
    """Test perplexity and BLEU (greedy and beam 12) of the run's best.npz; writes the translations."""
    runner.load_best(run_dir, model)
    t0 = time.perf_counter()
    test_ppl = evaluate_perplexity(model, test)
    sources = [src for src, _ in test]
    summary = {**runner.history_summary(cfg, history), "test_ppl": test_ppl}
    write_references(run_dir.parent, corpus, test)
    for beam, key in ((1, "greedy"), (BEAM, f"beam{BEAM}")):
        t1 = time.perf_counter()
        hyps = translate_ids(model, sources, beam)
        path = run_dir / f"test.{key}.txt"
        runfolder.write_text(path, "".join(" ".join(corpus.decode_tgt(h)) + "\n" for h in hyps))
        summary[f"bleu_{key}"] = bleu_from_files(path, run_dir.parent / "test.ref.txt")["bleu"]
        summary[f"decode_{key}_s"] = time.perf_counter() - t1
    summary["eval_time_s"] = time.perf_counter() - t0
    runfolder.write_json(run_dir / "summary.json", summary)
    log(f"{run_dir.name}: test ppl {test_ppl:.3f}  BLEU greedy {summary['bleu_greedy']:.1f}  "
        f"beam {BEAM} {summary[f'bleu_beam{BEAM}']:.1f}  (best epoch {summary['best_epoch']} of {len(history)})")
    return summary


def write_references(out_dir, corpus, test) -> Path:
    path = Path(out_dir) / "test.ref.txt"
    text = "".join(" ".join(corpus.decode_tgt(tgt)) + "\n" for _, tgt in test)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        runfolder.write_text(path, text)
    return path


def _read_summary(run_dir) -> dict:
    return runner.read_summary(run_dir, ("test_ppl", "valid_ppl", "train_ppl", "bleu_greedy", f"bleu_beam{BEAM}",
                                         "epochs"))


# ---------------------------------------------------------------------------
# The experiment: both methods, several seeds, one table
# ---------------------------------------------------------------------------

def run_configs(seeds=3, quick=False, **overrides) -> list:
    """[(folder name, method, TranslateConfig)] of the experiment, non-regularized first."""
    runner.whole_number(seeds, "--seeds", 1, 100)
    base = dataclasses.replace(TranslateConfig(), **{**(QUICK if quick else FULL),
                                                     **{k: v for k, v in overrides.items() if v is not None}})
    return runner.method_runs(base, dict.fromkeys(METHODS, seeds), DROPOUT, "translate", validate)


def _run_one(name, job, in_worker, corpus=None):
    """One run of the experiment (``runner.run_all``); in a worker process it loads its own corpus and
    logs line by line."""
    cfg, out_dir, data_dir, device, progress = job
    corpus = corpus if corpus is not None else load_data(data_dir)
    log = runner.worker_log if in_worker else print
    return train_run(cfg, corpus, Path(out_dir) / name, log, progress and not in_worker, device)


def run_translate(out_dir="runs/translate", seeds=3, quick=False, jobs=1, data_dir=None, device=None,
                  progress=True, log=print, **overrides) -> dict:
    """The whole experiment (module docstring). Returns {"rows", "table", "interrupted"}."""
    out_dir = runner.check_out_dir(out_dir)
    runner.whole_number(jobs, "--jobs", 1, 64)
    runs = run_configs(seeds, quick, **overrides)
    corpus = load_data(data_dir)
    _splits(corpus, runs[0][2])  # every split usable, before anything is written
    settings = {"data": corpus.name, "vocab_hash": parallel_vocab_hash(corpus), "quick": bool(quick),
                "runs": {name: cfg.to_dict() for name, _, cfg in runs}}
    runner.claim_experiment(out_dir, settings, "translation")
    t0 = time.perf_counter()
    log(f"translation ({corpus.name}): {len(runs)} runs ({', '.join(METHODS)} x {seeds} seeds) into {out_dir}"
        + (f", {jobs} at a time" if jobs > 1 else ""))
    todo = [(name, (cfg, str(out_dir), data_dir, device, progress)) for name, _, cfg in runs]
    run_one = _run_one if jobs > 1 else functools.partial(_run_one, corpus=corpus)
    summaries, interrupted = runner.run_all(todo, run_one, jobs, log)
    if interrupted:
        log("interrupted: run the same command again to continue where each run stopped")
        return {"interrupted": True}
    rows = [{"method": method, "seed": cfg.seed, "run": name,
             **{k: summaries[name][k] for k in ("train_ppl", "valid_ppl", "test_ppl", "bleu_greedy",
                                                f"bleu_beam{BEAM}", "epochs", "best_epoch", "train_time_s")}}
            for name, method, cfg in runs]
    result = {"paper": PAPER, "best_perplexity": corpus.best_perplexity, "data": corpus.name,
              "description": corpus.description, "rows": rows,
              "bleu_signature": bleu_from_files(out_dir / rows[0]["run"] / "test.greedy.txt",
                                                out_dir / "test.ref.txt")["signature"],
              "wall_time_s": time.perf_counter() - t0}
    runfolder.write_json(out_dir / "results.json", result)
    table = results_table(result)
    runfolder.write_text(out_dir / "results.md", table)
    try:
        plot_validation(out_dir, runs, corpus.best_perplexity)
    except Exception as exc:  # a figure must never cost a finished experiment
        log(f"(could not draw the figure: {exc})")
    return {"interrupted": False, "rows": rows, "table": table, "out_dir": out_dir}


def results_table(result: dict) -> str:
    """The markdown table: ours (mean ± sd over seeds) beside the paper's Table 3."""
    beam = f"bleu_beam{BEAM}"
    lines = ["| model | paper: test ppl | paper: BLEU | train ppl | valid ppl | test ppl | BLEU greedy | "
             f"BLEU beam {BEAM} | epochs (best) |", "|---|---|---|---|---|---|---|---|---|"]
    for method in METHODS:
        rows = [r for r in result["rows"] if r["method"] == method]
        if not rows:
            continue
        cell = {}
        for key, digits in (("train_ppl", 3), ("valid_ppl", 3), ("test_ppl", 3), ("bleu_greedy", 1), (beam, 1)):
            mean, sd = runner.mean_sd([r[key] for r in rows])
            cell[key] = f"{mean:.{digits}f} ± {sd:.{digits}f}"
        epochs = ", ".join(f"{r['epochs']} ({r['best_epoch']})" for r in rows)
        paper = result["paper"][method]
        lines.append(f"| {method} (dropout {'0' if method == METHODS[0] else DROPOUT}) | {paper['test_ppl']} | "
                     f"{paper['bleu']} | {cell['train_ppl']} | {cell['valid_ppl']} | {cell['test_ppl']} | "
                     f"{cell['bleu_greedy']} | {cell[beam]} | {epochs} |")
    n = len({r["seed"] for r in result["rows"]})
    best = result.get("best_perplexity")
    notes = [f"Mean ± sd over {n} seed{'s' if n > 1 else ''}; the paper: WMT'14 En->Fr, one 4x1000 model each."]
    if best:
        notes.append(f"Best achievable perplexity on this corpus (the synonyms it cannot predict): "
                     f"test {best['test']:.3f}.")
    notes.append(f"BLEU by sacreBLEU ({result['bleu_signature']}) on the files test.*.txt against test.ref.txt.")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def plot_validation(out_dir, runs, best=None) -> Path | None:
    """validation.png: per epoch, the validation perplexity of every run (left, log scale), and a close-up of
    the end with the training perplexity dashed and the best achievable perplexity dotted (right)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..plots import epoch_rows, read_metrics, save_figure, style_epoch_axes

    out_dir = Path(out_dir)
    fig = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(fig)
    whole, end = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    colours = {"non-regularized": "black", "regularized": "tab:blue"}
    labelled, lowest = set(), []
    for name, method, _ in runs:
        rows = [r for r in epoch_rows(read_metrics(out_dir / name)) if math.isfinite(r["valid_ppl"])]
        if not rows:
            continue
        epochs = [r["epoch"] for r in rows]
        label = None if method in labelled else method
        whole.plot(epochs, [r["valid_ppl"] for r in rows], color=colours[method], alpha=0.8, label=label)
        end.plot(epochs, [r["valid_ppl"] for r in rows], color=colours[method], alpha=0.8,
                 label=None if label is None else f"{method}: validation")
        end.plot(epochs, [r["train_ppl"] for r in rows], color=colours[method], alpha=0.5, linestyle="--",
                 label=None if label is None else f"{method}: training (with its dropout)")
        labelled.add(method)
        lowest.append(min(min(r["valid_ppl"], r["train_ppl"]) for r in rows))
    if not labelled:
        return None
    style_epoch_axes(whole, "Validation perplexity (each line a seed)", "perplexity (log scale)")
    if best:
        end.axhline(best["valid"], color="grey", linestyle=":", label=f"best achievable (valid {best['valid']:.2f})")
    end.set_ylim(0.95 * min(lowest + ([best["valid"]] if best else [])), 2.5)
    style_epoch_axes(end, "The end: D trades training fit for validation", "perplexity", log=False)
    whole.legend(fontsize=8)
    end.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, out_dir / "validation.png", dpi=110)


# ---------------------------------------------------------------------------
# A trained model translates your sentences
# ---------------------------------------------------------------------------

@dataclass
class Translator:
    model: TranslationModel
    src_vocab: list
    tgt_vocab: list
    path: Path

    def translate(self, sentences, beam=BEAM, map_unknown=False, log=print) -> list:
        """Translations (strings) of ``sentences`` (strings, whitespace tokens, lower-cased here)."""
        if isinstance(beam, bool) or not isinstance(beam, int) or not 1 <= beam <= 100:
            raise ValueError(f"--beam must be a whole number from 1 to 100 (1 is greedy; the paper uses 12), "
                             f"got {beam!r}")
        ids = {w: i for i, w in enumerate(self.src_vocab)}
        unk = ids.get("<unk>")
        sources = []
        for k, sentence in enumerate(sentences, 1):
            words = sentence.lower().split()
            if not words:
                raise DataError(f"sentence {k} is empty; give one sentence per line")
            from ..data.parallel import MAX_SENTENCE_TOKENS
            if len(words) > MAX_SENTENCE_TOKENS:
                raise DataError(f"sentence {k} has {len(words)} words, more than the limit of "
                                f"{MAX_SENTENCE_TOKENS}; split it")
            unknown = sorted({w for w in words if w not in ids or w in ("<unk>", "<eos>", "<sep>")})
            if unknown and not map_unknown:
                known = ", ".join(w for w in self.src_vocab[:12] if not w.startswith("<"))
                raise DataError(f"sentence {k}: the model has never seen {', '.join(map(repr, unknown[:10]))}; "
                                f"use words of its training data (e.g. {known}, ...), or --unk to read them as <unk>")
            if unknown:
                log(f"sentence {k}: read {', '.join(map(repr, unknown[:10]))} as <unk> (never seen in training)")
            sources.append(np.array([ids.get(w, unk) for w in words], dtype=np.int64))
        hyps = translate_ids(self.model, sources, beam)
        return [" ".join(self.tgt_vocab[t] for t in h) for h in hyps]


def _pick_checkpoint(path: Path, log) -> Path:
    """A .npz as given; a run folder's best.npz; in an experiment folder, the best run's best.npz (said)."""
    if str(path).strip() == "":
        raise ValueError("--model is empty; give a run folder, an experiment folder or a .npz file")
    if path.is_file():
        return path
    if (path / "best.npz").is_file():
        return path / "best.npz"
    if (path / "experiment.json").is_file():
        done = []
        for run in sorted(p for p in path.iterdir() if (p / "summary.json").is_file() and (p / "best.npz").is_file()):
            try:
                done.append((_read_summary(run)["valid_ppl"], run))
            except DataError as exc:
                log(f"(skipping {run.name}: {exc})")
        if not done:
            raise CheckpointError(f"{path} holds no finished run yet; finish it with: minilstm translate --out {path}")
        ppl, run = min(done)
        log(f"using {run / 'best.npz'} (the lowest validation perplexity in {path}: {ppl:.3f})")
        return run / "best.npz"
    raise CheckpointError(f"no translation model at {path}: give a .npz, a run folder with best.npz, or the "
                          "folder `minilstm translate --out` wrote")


def load_translator(path, device=None, log=print) -> Translator:
    """A trained translation model from a checkpoint (every field checked: the file is untrusted)."""
    path = _pick_checkpoint(Path(path), log)
    ck = load_checkpoint(path)
    meta = ck.meta
    if meta.get("kind") != TranslationModel.kind:
        raise CheckpointError(f"{path} is not a translation model (a language model's checkpoint?); "
                              "translate with a model that `minilstm translate` trained, or use "
                              "`minilstm sample` / `minilstm eval` for a language model")
    try:
        cfg = config_from_dict(meta.get("config"), f"{path}: config")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc
    src, tgt, eos = meta.get("src_vocab"), meta.get("tgt_vocab"), meta.get("eos_id")
    if not (isinstance(src, list) and isinstance(tgt, list) and all(isinstance(w, str) for w in src + tgt)
            and isinstance(eos, int) and not isinstance(eos, bool) and 0 <= eos < len(tgt) and tgt[eos] == "<eos>"
            and len(set(src)) == len(src) and len(set(tgt)) == len(tgt) and src and tgt):
        raise CheckpointError(f"{path}: its vocabularies are damaged (src_vocab, tgt_vocab, eos_id); retrain")
    emb = ck.params.get("embed.W")
    if emb is None or tuple(emb.shape) != (len(src) + 1 + len(tgt), cfg.hidden_size):
        raise CheckpointError(f"{path}: its embedding {None if emb is None else tuple(emb.shape)} does not fit its "
                              f"vocabularies ({len(src)} + 1 + {len(tgt)} words) and hidden size; retrain")
    model = TranslationModel(len(src), len(tgt), eos, cfg.hidden_size, cfg.num_layers, dropout=cfg.dropout,
                             dropout_mode=cfg.dropout_mode, init_scale=cfg.init_scale, dtype=cfg.dtype,
                             device=device, seed=cfg.seed)
    check_compatible(meta, None, {k: v.shape for k, v in model.params.items()})
    check_params(ck, model, path)
    model.params = {k: model.xp.asarray(v) for k, v in ck.params.items()}
    return Translator(model, src, tgt, path)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def add_cli(sub):
    """Register ``minilstm translate`` (cli.py lists this module)."""
    from ..cliargs import add_device_flags, int_arg, path_arg

    p = sub.add_parser(
        "translate", help="the paper's Table 3 in miniature: translation without and with dropout; "
                          "or translate sentences with a trained model (--model)",
        description=__doc__.split("\n\n")[0].rstrip(".") + ": trains the non-regularized and the regularized "
        "model (several seeds, early stopping), then writes test perplexity and BLEU (greedy and beam 12) beside the "
        "paper's. Run it again to resume where it stopped. With --model, translates SENTENCE or --file instead.")
    p.add_argument("sentence", nargs="*", help="with --model: the sentence(s) to translate, e.g. "
                                              "'the boy eats an apple'")
    p.add_argument("--out", type=path_arg, default="runs/translate", help="output folder (default runs/translate)")
    p.add_argument("--quick", action="store_true", help="a tiny setting that runs in seconds (for tests)")
    p.add_argument("--seeds", type=int_arg(1, 100), default=3, help="seeds per method (default 3)")
    p.add_argument("--jobs", type=int_arg(1, 64), default=1,
                   help="runs side by side, one BLAS thread each (default 1; 2 on a 2-core machine is faster)")
    p.add_argument("--hidden", type=int_arg(1, 100_000), help="hidden units H (default 256)")
    p.add_argument("--layers", type=int_arg(1, 64), help="LSTM layers L (default 2)")
    p.add_argument("--epochs", type=int_arg(1, 100_000), help="at most this many epochs (default 80)")
    p.add_argument("--train-pairs", type=int_arg(0, 10**9), help="the first K training pairs (default all)")
    p.add_argument("--data-dir", help="a folder with your own parallel text: train.src/train.tgt, valid.src/"
                                      "valid.tgt, test.src/test.tgt, one sentence a line (default: the built-in corpus)")
    p.add_argument("--model", help="translate with this trained model: a .npz, a run folder, or the --out folder "
                                   "(its best run)")
    p.add_argument("--file", help="with --model: translate every line of this file")
    p.add_argument("--beam", type=int_arg(1, 100), default=BEAM, help=f"beam size (default {BEAM}; 1 is greedy)")
    p.add_argument("--unk", action="store_true", help="with --model: read unknown words as <unk> instead of refusing")
    add_device_flags(p)
    p.set_defaults(func=_cmd_translate)


def _cmd_translate(args):
    if args.model is not None:
        return _cmd_translate_text(args)
    if args.sentence or args.file:
        raise ValueError("a sentence or --file is translated by a trained model: add --model RUN "
                         f"(e.g. --model {args.out})")
    res = run_translate(args.out, args.seeds, args.quick, args.jobs, args.data_dir, args.device,
                        progress=not args.no_progress, hidden_size=args.hidden, num_layers=args.layers,
                        epochs=args.epochs, train_pairs=args.train_pairs)
    if res["interrupted"]:
        return 130
    print(res["table"], end="")
    print(f"saved in {res['out_dir']}: results.md, results.json, validation.png, the test translations in each run "
          f"folder\nnext:  minilstm translate --model {res['out_dir']} 'the boy eats an apple'")
    return 0


def _cmd_translate_text(args):
    if bool(args.sentence) == bool(args.file):
        raise ValueError("with --model, give either a sentence or --file PATH (one sentence a line)")
    log = lambda s: print(s, file=sys.stderr)  # noqa: E731  (messages apart from the translations on stdout)
    translator = load_translator(args.model, args.device, log)
    if args.file:
        from ..data.parallel import read_sentences
        sentences = [" ".join(words) for words in read_sentences(args.file)]
    else:
        sentences = [" ".join(args.sentence)]
    for line in translator.translate(sentences, args.beam, args.unk, log):
        print(line)
    return 0
