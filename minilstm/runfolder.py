"""The run folder: what ``minilstm train --out DIR`` writes, and how it never loses what is there.

A folder that holds any run file belongs to another run and is refused (unless
``--resume`` continues it, or ``--force`` replaces the files it lists); every
file is written atomically (a temporary renamed over it, removed if the write
fails), so a crash or a full disk leaves the old file whole; temporaries that an
interrupted save left behind are removed when the folder is next used.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from . import atomic
from .checkpoint import CheckpointError

# The files a run folder holds; a folder with any of them is another run and is never overwritten.
RUN_FILES = ("config.json", "metrics.jsonl", "summary.json", "last.npz", "best.npz", "curves.png")


class RunFolderError(CheckpointError):
    """A run folder cannot be used for training: it holds another run, is not a folder, or cannot be written.

    (Reading a folder that is not a run folder raises ``plots.NotARunFolderError`` instead.)
    """


def _stale_temporaries(out_dir: Path) -> list:
    """Temporary files an interrupted save left behind (ours only: .NAME.*.tmp and NAME.tmp)."""
    found = []
    for p in out_dir.iterdir():
        if p.is_file() and p.name.endswith(".tmp") and any(
                p.name.startswith(f".{f}.") or p.name == f"{f}.tmp" for f in RUN_FILES):
            found.append(p)
    return sorted(found)


def check_run_folder(out_dir: Path, resume: bool, force: bool) -> tuple[list, list]:
    """Refuse to overwrite another run. Returns (run files --force replaces, stale temporaries); changes nothing.

    Everything ``claim_run_folder`` will do is checked here, first: a --force that could not remove
    every file it lists (one of them a folder, a folder we may not write to) is refused before any
    file is removed, so a failed --force never leaves half a run behind.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise RunFolderError(f"--out {out_dir} is a file, not a folder; choose another --out")
    if not out_dir.is_dir():
        if resume:
            raise CheckpointError(f"--resume: no run folder {out_dir}; start without --resume")
        if any(p.exists() and not p.is_dir() for p in out_dir.parents):
            raise RunFolderError(f"cannot create the run folder {out_dir}: a parent is a file; choose another --out")
        return [], []
    try:
        stale = _stale_temporaries(out_dir)
        present = [f for f in RUN_FILES if (out_dir / f).exists() or (out_dir / f).is_symlink()]
    except OSError as exc:
        raise RunFolderError(f"cannot read the run folder {out_dir}: {exc.strerror}") from exc
    if resume:
        if "last.npz" not in present:
            raise CheckpointError(f"--resume: no checkpoint {out_dir / 'last.npz'}; start without --resume"
                                  + (f" (the folder holds {', '.join(present)}: choose another --out, or "
                                     "--force to replace them)" if present else ""))
        _check_removable(out_dir, stale)
        return [], stale
    if present == ["config.json"] and is_own_config(out_dir / "config.json"):
        # A run stopped before it finished its first epoch: config.json is all it wrote, and a new
        # start rewrites it. Nothing is lost, so no --force is needed (lab and compare rely on it).
        _check_removable(out_dir, [out_dir / "config.json", *stale])
        return [], stale
    if present and not force:
        raise RunFolderError(f"{out_dir} already holds a run ({', '.join(present)}); pass --resume to "
                             "continue it, choose another --out, or pass --force to replace those files")
    _check_removable(out_dir, [out_dir / f for f in present] + stale)
    return present, stale


def is_own_config(path: Path) -> bool:
    """True if ``path`` is a config.json that ``train`` wrote (a JSON object with its label and vocab_hash)."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"label", "vocab_hash", "name"} <= set(data)


def _check_removable(out_dir: Path, paths: list) -> None:
    """Refuse before removing anything if one of ``paths`` could not be removed (or written again)."""
    import os

    for path in paths:
        if path.is_dir() and not path.is_symlink():
            raise RunFolderError(f"cannot replace {path}: it is a folder, not a file of a run; move it away "
                                 "or choose another --out (nothing was removed)")
    if paths and not os.access(out_dir, os.W_OK | os.X_OK):
        raise RunFolderError(f"cannot replace the files in {out_dir}: the folder is not writable; fix its "
                             "permissions (chmod u+w) or choose another --out (nothing was removed)")


def claim_run_folder(out_dir: Path, replaced: list, stale: list, log) -> None:
    """Create the folder; remove what --force replaces and what interrupted saves left behind."""
    if replaced:
        log(f"--force: replacing {', '.join(replaced)} in {out_dir}")
        for f in replaced:
            _remove(out_dir / f)
    for p in stale:
        _remove(p)
    if stale:
        log(f"removed {len(stale)} temporary file(s) an interrupted save left in {out_dir}: "
            + ", ".join(p.name for p in stale))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"cannot create the run folder {out_dir}: {exc.strerror or exc}; "
                             "choose another --out") from exc


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise RunFolderError(f"cannot remove {path}: {exc.strerror}") from exc


def write_text(path: Path, text: str) -> None:
    """Write ``path`` atomically (atomic.py): the old file stays whole if anything fails."""
    atomic.write_text(path, text)


def write_json(path: Path, obj) -> None:
    atomic.write_json(path, obj)


def write_metrics(out_dir: Path, history: list, extra: list | tuple = ()) -> None:
    """metrics.jsonl is rewritten from the checkpointed history, so a resume never duplicates lines."""
    write_text(out_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in list(history) + list(extra)))


def where_and_next(out_dir, history: list) -> str:
    """What a finished run leaves in ``out_dir`` and the three commands to try next (train's last lines)."""
    out_dir = Path(out_dir)
    files = []
    if (out_dir / "best.npz").exists() and history:
        best = min(history, key=lambda r: r["valid_ppl"])
        files.append(f"best.npz (lowest validation perplexity, epoch {best['epoch']})")
    if (out_dir / "last.npz").exists():
        files.append(f"last.npz (epoch {history[-1]['epoch'] if history else '?'}, for --resume)")
    files += [name for name in ("curves.png", "metrics.jsonl") if (out_dir / name).exists()]
    run = shlex.quote(str(out_dir))
    return (f"saved in {out_dir}: {', '.join(files)}\n"
            f"next:  minilstm plot {run}      # the training curves\n"
            f"       minilstm eval {run}      # perplexity of best.npz\n"
            f"       minilstm sample {run}    # text from best.npz")


# --------------------------------------------------------------------------- reading: which checkpoint a folder means


def _best_valid(run: Path):
    """(lowest validation perplexity of ``run``, None) or (None, why it cannot be read).

    Every epoch's valid_ppl must be a number and not NaN (inf is a number: a diverged run, ranked
    last); a run with a damaged metrics.jsonl is never picked as "the best" by accident.
    """
    import math

    from .plots import epoch_rows, read_metrics

    try:
        rows = epoch_rows(read_metrics(run))
    except (OSError, ValueError) as exc:
        return None, " ".join(str(exc).split())
    if not rows:
        return None, "no finished epoch in its metrics.jsonl"
    for row in rows:
        value = row.get("valid_ppl")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            return None, f"its metrics.jsonl has valid_ppl {json.dumps(value)} at epoch {row['epoch']}"
    return min(row["valid_ppl"] for row in rows), None


def checkpoint_in(path: str, log) -> str:
    """``path`` if it is a file, else the checkpoint of the run folder it names: best.npz (else
    last.npz); in a folder of runs (runs/tiny), that of the run with the lowest validation
    perplexity, never one whose metrics cannot be read (those are named). Says with ``log`` which
    file it took."""
    folder = Path(path)
    if not folder.is_dir():
        return path

    def checkpoint(d):
        return next((d / n for n in ("best.npz", "last.npz") if (d / n).is_file()), None)

    if checkpoint(folder):
        chosen, why = checkpoint(folder), ""
    else:
        runs = [d for d in sorted(folder.iterdir()) if d.is_dir() and checkpoint(d)]
        if not runs:
            raise CheckpointError(f"{folder} holds no checkpoint (best.npz or last.npz): give a .npz file or a run "
                                  "folder that `minilstm train --out DIR` wrote")
        ranked, unreadable = [], []
        for d in runs:
            best, problem = _best_valid(d)
            (ranked.append((best, d.name, d)) if problem is None else unreadable.append(f"{d.name}: {problem}"))
        if not ranked:
            raise CheckpointError(f"cannot choose the best run in {folder}: no run there has a readable validation "
                                  f"perplexity ({'; '.join(unreadable)}); name a checkpoint, e.g. "
                                  f"{shlex.quote(str(checkpoint(runs[0])))}")
        best, _, run = min(ranked)
        chosen = checkpoint(run)
        why = (f"; of the {len(runs)} runs in {folder} ({', '.join(d.name for d in runs)}), {run.name} has the lowest "
               f"validation perplexity ({best:.2f}); name a run folder to choose another") if len(runs) > 1 else ""
        if unreadable:
            log(f"skipped (unreadable, never picked as the best): {'; '.join(unreadable)}")
    reason = "the best validation perplexity" if chosen.name == "best.npz" else "no best.npz yet"
    log(f"using {chosen} ({reason}{why})")
    return str(chosen)
