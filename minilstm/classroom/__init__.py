"""The classroom: student handouts from the reference code (``minilstm assign``) and the grader
(``minilstm grade``). One small module per job, imports one way (a module only imports those above it):

``assignments/``  the registry (assignments, parts, groups, points), the probes that say what each part
                  computes, the checks that judge it, and the visible tests shipped to students
``errors.py``     AssignError and GradeError: one-line messages for the command line
``regions.py``    ``### BEGIN SOLUTION`` regions and DUPLICATE blocks: finding them, the stubs
``leaks.py``      the leak check: no handed-out solution survives anywhere in a handout
``assign.py``     the student version: build it, write it (with a manifest, so ``--force`` removes only
                  what assign wrote)
``plan.py``       the instructor's plan: what is graded, which parts are given; ``OUT.plan.json``
``instructor.py`` the instructor folder: points per part or group (``grading.json``), extra checks
``submission.py`` what is read from a student's folder (the package's Python files, normalised) and
                  which folders of a class folder are submissions
``assemble.py``   the package one part is graded on: the student's files, with the reference rebound
                  for the parts it uses
``sandbox/``      the only code that starts student code: the operating-system boundary (Landlock,
                  namespaces, rlimits) and the child of each graded part
``verdicts.py``   the points of a part, decided in the grader from the arrays the child returned
``reports.py``    a submission's report: as text, JSON, Gradescope's format; saved reports of a class run
``gradebook.py``  a class's gradebook.csv and feedback files
``grade.py``      grading itself: every part of every submission, in parallel, then the reports
``cli.py``        ``minilstm assign`` and ``minilstm grade`` on the command line (``add_cli``)

The threat model is in lessons/INSTRUCTORS.md ("Trust model"); ``python -m minilstm.classroom.sandbox``
lists which layers of the boundary this machine has.
"""
