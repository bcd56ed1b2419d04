"""Where each data source lives, and the check that a run's config asks for the data that
resources/ and results/ already hold.

The archive and its cache are named by the archive's md5, so two data sources live side by
side, and a command whose data config differs from the last run's (a forgotten --configfile)
never replaces what was downloaded or prepared. Each result records the md5 of the archive it
was trained on; before any job runs, results trained on other data are named, with the fix,
instead of being trained again.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path

from cifarbench.errors import UserError

ARCHIVE = "resources/cifar-10-python-{md5}.tar.gz"
CACHE = "resources/cifar10-{md5}.npz"
# The config key that says the data changed on purpose (`--config data_changed=True`).
DATA_CHANGED = "data_changed"
NAMED = 3  # files named in the one-line message; the rest are counted


def archive_path(md5: str) -> str:
    return ARCHIVE.format(md5=md5)


def cache_path(md5: str) -> str:
    return CACHE.format(md5=md5)


def check_data_source(md5: str, root: Path = Path()) -> None:
    """Raise UserError, in one line with the fix, when results/ holds results trained on an
    archive other than the config's `md5`, or resources/ holds other archives but not this one
    (a run would download it, offline or not)."""
    trained = [(path, used) for path, used in _trained_on(root) if used != md5]
    if trained:
        paths = [path for path, _ in trained]
        raise UserError(
            f"data.md5 is {md5}, but results/ holds results trained on other data "
            f"(md5 {trained[0][1]}: {_some(paths, root)}): "
            f"{_fix('retrain them on this config')}"
        )
    if not (root / archive_path(md5)).exists() and not (root / cache_path(md5)).exists():
        others = sorted(_prepared(root))
        if others:
            raise UserError(
                f"data.md5 is {md5}, but resources/ holds only other data "
                f"({_some(others, root)}): {_fix('fetch and prepare this one beside it')}"
            )


def _fix(what_the_flag_does: str) -> str:
    return (
        "pass the config file they came from, after the targets (snakemake [targets] "
        "--configfile offline.yaml), or write its data: to config.local.yaml, read on every "
        f"run; if the data changed on purpose, add --config {DATA_CHANGED}=True to "
        f"{what_the_flag_does}"
    )


def _trained_on(root: Path) -> Iterator[tuple[Path, str]]:
    """(file, md5 of the archive it was trained on) for each metrics JSON and seed record in
    results/ that records one. Files that are not results are left to the readers that check
    them (aggregate, summarize)."""
    results = root / "results"
    for path in sorted([*results.glob("*.json"), *results.glob("seeds/*/seed*.json")]):
        used = _md5_of(path)
        if used is not None:
            yield path, used


def _md5_of(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text()).get("data")
    except (OSError, ValueError, AttributeError):
        return None
    return data.get("md5") if isinstance(data, dict) else None


def _prepared(root: Path) -> Iterator[Path]:
    """The archives and caches in resources/, named as this module names them."""
    for pattern in (ARCHIVE, CACHE):
        named = re.compile(re.escape(pattern).replace(re.escape("{md5}"), "[0-9a-f]{32}"))
        for path in root.glob(pattern.format(md5="*")):
            if named.fullmatch(path.relative_to(root).as_posix()):
                yield path


def _some(paths: list[Path], root: Path) -> str:
    named = ", ".join(path.relative_to(root).as_posix() for path in paths[:NAMED])
    more = len(paths) - NAMED
    return named + (f" and {more} more" if more > 0 else "")
