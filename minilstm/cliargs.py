"""Argument types and shared flags for the command line, in one place.

Every command module registers itself with an ``add_cli(sub)`` function that uses these, and
``cli.build_parser`` only lists the modules. Ranges are checked by the parser, so a bad flag is one line
naming the flag and what it accepts, never a traceback later.
"""

from __future__ import annotations

import argparse
import math

from .choices import DEVICES


def int_arg(lo=None, hi=None):
    """An argparse type: a whole number in [lo, hi]."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if lo is not None and value < lo:
            raise argparse.ArgumentTypeError(f"must be at least {lo}, got {value}")
        if hi is not None and value > hi:
            raise argparse.ArgumentTypeError(f"must be at most {hi:,}, got {value:,}")
        return value
    parse.__name__ = "int"
    return parse


def float_arg(lo=None, hi=None, lo_open=False, hi_open=False):
    """An argparse type: a finite number in the given range (NaN and inf refused)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if lo is not None and (value <= lo if lo_open else value < lo):
            raise argparse.ArgumentTypeError(f"must be {'above' if lo_open else 'at least'} {lo:g}, got {value:g}")
        if hi is not None and (value >= hi if hi_open else value > hi):
            raise argparse.ArgumentTypeError(f"must be {'below' if hi_open else 'at most'} {hi:g}, got {value:g}")
        return value
    parse.__name__ = "float"
    return parse


def path_arg(text):
    """An argparse type: a non-empty path (an empty one would silently mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not allowed; give a folder or file name")
    return text


def add_device_flags(p, device=True):
    """--device and --no-progress, the flags every training command shares."""
    if device:
        p.add_argument("--device", choices=DEVICES, default=None,
                       help="cpu (NumPy) or gpu (CuPy); default $MINILSTM_DEVICE or cpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_data_dir_flag(p):
    """--data-dir, where the Penn Treebank files are (every command that reads the corpus)."""
    p.add_argument("--data-dir", type=path_arg, help="folder with ptb.{train,valid,test}.txt (default: $MINILSTM_DATA, "
                                                     "else ~/.cache/minilstm/ptb, downloaded there if missing)")
