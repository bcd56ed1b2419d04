"""Several machines' results side by side (`snakemake compare --config compare='[a,b]'`).

Each folder holds one machine's finished results (its `<variant>.json` files, as a run leaves
them in `results/`). The table has one row per variant and machine, and each row's speedup
against the first machine's row for the same variant. The same variant name run with other
settings (another settings hash) is flagged and never compared: its speedup stays empty.
"""

import logging

import pandas as pd

from cifarbench import table
from cifarbench.columns import COLUMNS, MACHINE, SETTINGS_HASH, TIME, VARIANT, Column
from cifarbench.config import DEFAULT_BASELINES
from cifarbench.errors import UserError
from cifarbench.result_folders import folder_results

log = logging.getLogger("cifarbench.compare")

SPEEDUP_VS_FIRST = Column("Speedup vs First Machine", None, measured=True)
SAME_SETTINGS = Column("Same Settings as First Machine", None)
FOLDER = Column("Result Folder", None)


def compare_table(folders: list[str], order: list[str], baselines: dict[str, str]) -> pd.DataFrame:
    """One row per variant and machine, in `order` (the config's variants; others after,
    by name), each variant's machines in the folders' order. `baselines`: the config's, as
    config.baselines chooses them; a variant the config does not define gets its device's."""
    tables = [_machine_table(folder, baselines) for folder in folders]
    for rows, label, folder in zip(tables, _labels(tables, folders), folders, strict=True):
        rows[MACHINE.header], rows[FOLDER.header] = label, folder
    rows = pd.concat(tables, ignore_index=True)
    _compare_with_first(rows, tables[0])
    rank = {name: index for index, name in enumerate(order)}
    rows["_rank"] = rows[VARIANT.header].map(lambda name: (rank.get(name, len(rank)), name))
    rows = rows.sort_values("_rank", kind="stable").drop(columns="_rank")
    return rows[_column_order()].reset_index(drop=True)


def _machine_table(folder: str, baselines: dict[str, str]) -> pd.DataFrame:
    """A folder's table, as its own run's aggregate built it; refused if it mixes machines."""
    results = table.load_results(folder_results(folder))
    machines = {
        (r["environment"]["machine"]["name"], r["environment"]["machine"]["id"]) for r in results
    }
    if len(machines) > 1:
        named = ", ".join(f"{name} (id {id_})" for name, id_ in sorted(machines, key=str))
        raise UserError(
            f"{folder}: holds results of {len(machines)} machines, {named}: "
            "compare needs one folder per machine"
        )
    chosen = {
        r["variant"]: baselines.get(r["variant"], DEFAULT_BASELINES[r["settings"]["device"]])
        for r in results
    }
    return table.build_table(results, chosen)


def _labels(tables: list[pd.DataFrame], folders: list[str]) -> list[str]:
    """Each folder's machine name; a name two folders share gets its folder beside it."""
    names = [rows[MACHINE.header].iloc[0] for rows in tables]
    return [
        f"{name} ({folder})" if names.count(name) > 1 else name
        for name, folder in zip(names, folders, strict=True)
    ]


def _compare_with_first(rows: pd.DataFrame, first: pd.DataFrame) -> None:
    """Speedup against the first machine's row for the same variant, where both ran the
    same settings; a variant whose settings differ is flagged (False) and logged."""
    first = first.set_index(VARIANT.header)
    first_hash = rows[VARIANT.header].map(first[SETTINGS_HASH.header])
    first_time = rows[VARIANT.header].map(first[TIME.header]).astype(float)
    same = rows[SETTINGS_HASH.header] == first_hash
    rows[SAME_SETTINGS.header] = same.astype(object).where(first_hash.notna(), None)
    speedup = first_time / rows[TIME.header].astype(float)
    rows[SPEEDUP_VS_FIRST.header] = speedup.where(same).round(2)
    for _, row in rows[first_hash.notna() & ~same].iterrows():
        log.warning(
            "%s on %s ran other settings than on the first machine (settings hash %s, not %s): "
            "flagged, not compared",
            row[VARIANT.header],
            row[MACHINE.header],
            row[SETTINGS_HASH.header],
            first_hash[row.name],
        )


def _column_order() -> list[str]:
    """The study's five columns, then the machine and the comparison, then the rest."""
    headers = [column.header for column in COLUMNS]
    compared = [MACHINE.header, SPEEDUP_VS_FIRST.header, SAME_SETTINGS.header, FOLDER.header]
    return [*headers[:5], *compared, *(h for h in headers[5:] if h != MACHINE.header)]
