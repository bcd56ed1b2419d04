"""The `cifarbench` command installed with the package: `cifarbench doctor`."""

import sys

from cifarbench import doctor

COMMANDS = {"doctor": doctor.main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: cifarbench {{{','.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])
