"""The language model's commands, one module each: train, eval, sample, plot, gradcheck.

Every command module, here or beside the code it drives (lab.py, bench.py,
experiments/translate.py, the classroom), offers ``add_cli(sub)``: it adds its
sub-parser to ``sub`` with the argument types and shared flags of cliargs.py and
sets ``func``, the function ``minilstm COMMAND`` runs. ``cli.py`` only lists the
modules. A command module imports its heavy machinery inside ``func``, so
``minilstm --help`` stays fast.
"""
