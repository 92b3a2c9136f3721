"""Corpus BLEU from written files, by sacreBLEU (an optional extra: ``pip install 'minilstm[paper]'``).

BLEU is computed from the files an experiment writes (one sentence a line), never from token ids in
memory, so that anyone can recompute a reported score with ``sacrebleu REF... < HYP``. Several
reference files give multi-reference BLEU: a caption may be phrased in several correct ways, and one
reference would mostly measure which phrasing the model happened to pick.
"""

from __future__ import annotations

from pathlib import Path

from ..data import DataError


def _lines(path) -> list[str]:
    return Path(path).read_text(encoding="utf-8").split("\n")[:-1]


def bleu_from_files(hyp_path, *ref_paths) -> dict:
    """{"bleu": corpus BLEU (0-100, 2 decimals), "signature": sacreBLEU's} of ``hyp_path`` against the
    reference files (the i-th line of each is a reference for the i-th hypothesis)."""
    try:
        import sacrebleu
    except ImportError:
        raise DataError("BLEU needs sacreBLEU: pip install 'minilstm[paper]' (or pip install sacrebleu)") from None
    if not ref_paths:
        raise ValueError("bleu_from_files needs at least one reference file")
    hyps = _lines(hyp_path)
    refs = [_lines(p) for p in ref_paths]
    for path, lines in zip(ref_paths, refs):
        if len(lines) != len(hyps):
            raise DataError(f"{hyp_path} has {len(hyps)} lines but {path} has {len(lines)}; they must pair up")
    metric = sacrebleu.metrics.BLEU()
    score = metric.corpus_score(hyps, refs)
    return {"bleu": round(score.score, 2), "signature": str(metric.get_signature())}
