"""What every workflow script does around its work: log to the rule's log, fail in one line."""

import logging
import sys
from collections.abc import Callable

from cifarbench.errors import UserError


def run(log_path: str, main: Callable, **arguments) -> None:
    """Send stderr and logging to `log_path`, call `main` with `arguments` (by name: each of
    Snakemake's values stands beside the parameter it goes to), and turn a UserError into
    one line.

    The line goes to the log and to the terminal Snakemake runs in, then the job exits 1, so
    the cause of a failed job is on screen without opening the log.
    """
    terminal = sys.stderr
    sys.stderr = open(log_path, "w", buffering=1)  # noqa: SIM115 (lives as long as the job)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        main(**arguments)
    except UserError as error:
        logging.error("%s", error)
        print(f"cifarbench error: {error}", file=terminal)
        sys.exit(1)
