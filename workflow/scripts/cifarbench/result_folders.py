"""The result folders `snakemake compare` reads: light enough for the Snakefile to import
(no pandas, no scipy), since every command parses it."""

from pathlib import Path

from cifarbench.errors import UserError

USAGE = "--config compare='[runs/laptop,runs/a100]'"


def compare_folders(config: dict) -> list[str]:
    """The config's `compare` folders, given as a list or a comma-separated string."""
    folders = config.get("compare") or []
    if isinstance(folders, str):
        folders = folders.split(",")
    return [folder.strip() for folder in folders]


def metrics_files(folders: list[str]) -> list[str]:
    """Every folder's `<variant>.json` files: the compare rule's input."""
    if len(folders) < 2:
        raise UserError(f"config: compare: name two or more result folders ({USAGE})")
    return [path for folder in folders for path in folder_results(folder)]


def folder_results(folder: str) -> list[str]:
    """A result folder's `<variant>.json` files; refused where there are none."""
    if not Path(folder).is_dir():
        raise UserError(f"config: compare: {folder}: no such folder")
    found = sorted(Path(folder).glob("*.json"))
    if not found:
        raise UserError(f"config: compare: {folder}: holds no <variant>.json results")
    return [str(path) for path in found]
