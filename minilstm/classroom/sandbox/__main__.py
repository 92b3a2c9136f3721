"""``python -m minilstm.classroom.sandbox``: which layers of the boundary around student code this machine has."""

import sys

from . import describe, layers, refusal


def main() -> int:
    print("Sandbox layers for student code on this machine (minilstm grade):")
    found = layers()
    print(describe(found))
    why = refusal(found)
    print("\n" + (why if why else "Untrusted code can be graded here."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
