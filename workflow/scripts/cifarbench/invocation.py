"""Checks on how `snakemake` was called, made before any job runs: each mistake a user makes on
the command line gets one line that says what to type instead."""

from pathlib import Path

from cifarbench.errors import UserError


def check_config_files(paths: list[Path], root: Path) -> None:
    """`--configfile` takes every argument after it, so `--configfile offline.yaml
    results/cpu.json` reads the target as a second config file."""
    named = [_relative(Path(path), root) for path in paths]
    targets = [path for path in named if path.parts[:1] == ("results",)]
    if targets:
        configs = " ".join(path.as_posix() for path in named if path not in targets)
        raise UserError(
            f"--configfile {targets[0].as_posix()}: a target, not a config file (--configfile "
            f"takes every file after it): put targets first, snakemake "
            f"{' '.join(t.as_posix() for t in targets)} --configfile {configs or '<yours>'}"
        )


def _relative(path: Path, root: Path) -> Path:
    absolute, base = path.absolute(), root.absolute()
    return absolute.relative_to(base) if absolute.is_relative_to(base) else absolute


def requested_report(argv: list[str]) -> str | None:
    """The path given to `--report`, if this command writes a report. Snakemake tells the
    workflow nothing of it while the Snakefile is read, so it comes from the command line."""
    for at, arg in enumerate(argv):
        if arg.startswith("--report="):
            return arg.removeprefix("--report=")
        if arg == "--report":
            following = argv[at + 1] if at + 1 < len(argv) else "-"
            return "report.html" if following.startswith("-") else following
    return None


def check_report(report: str, report_dir: str, root: Path) -> None:
    """A run's report goes beside its CSV and figures, never over another run's report, and
    is made once that run has finished."""
    folder = Path(report).parent
    if folder.parts[:1] == ("results",) and folder != Path(report_dir):
        raise UserError(
            f"--report {report}: the run these options describe writes its CSV and figures to "
            f"{report_dir}/, and its report goes beside them (--report {report_dir}/report.html); "
            "a partial run's report needs that run's --config (only=, tag=)"
        )
    if not (root / report_dir / "training_data.csv").exists():
        finished = sorted(
            csv.parent.relative_to(root).as_posix() + "/"
            for csv in (root / "results").rglob("training_data.csv")
        )
        raise UserError(
            f"--report {report}: {report_dir}/training_data.csv does not exist, so the run these "
            "options describe has not finished here"
            + (
                f"; finished: {', '.join(finished)} (report one with the --config it ran with)"
                if finished
                else ""
            )
        )
