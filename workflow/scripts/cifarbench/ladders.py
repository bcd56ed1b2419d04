"""Ladders: variants in order from the stock baseline up, each turning on one optimization more
than the rung below it (config.yaml's `ladders:`), and each ladder's own run.

In the study's run the rungs are the hand-written variants as they are (10 epochs, one seed).
A ladder's own run, `--config only=cpu-ladder`, trains each rung as the variant
`cpu-ladder.<rung>`: the rung's settings with its ladder's `ladder_settings` on top
(replicates, epochs), as a sweep's `settings` do for its cells, so the study's named rows keep
the study's procedure and the ladder gets the repeats that tell a step from noise.
"""

RUN_SUFFIX = "-ladder"


def run_name(ladder: str) -> str:
    """What `only=` calls a ladder's own run: `cpu-ladder`."""
    return ladder + RUN_SUFFIX


def rung_variant(ladder: str, rung: str) -> str:
    """The variant a rung trains as in its ladder's own run: `cpu-ladder.cpu-l1-grouped`."""
    return f"{run_name(ladder)}.{rung}"


def expand(config: dict) -> dict[str, dict]:
    """Every ladder run's rung variant -> its settings changes from `defaults`."""
    on_top = config.get("ladder_settings") or {}
    return {
        rung_variant(ladder, rung): {
            **(config["variants"].get(rung) or {}),
            **(on_top.get(ladder) or {}),
        }
        for ladder, rungs in (config.get("ladders") or {}).items()
        for rung in rungs
    }


def runs(config: dict) -> dict[str, list[str]]:
    """Each ladder run's name -> its rung variants, in order."""
    return {
        run_name(ladder): [rung_variant(ladder, rung) for rung in rungs]
        for ladder, rungs in (config.get("ladders") or {}).items()
    }


def as_run(config: dict, selected: list[str]) -> dict[str, list[str]]:
    """Each ladder's rungs as this run trains them: its own run's variants where they were
    selected, the hand-written variants otherwise."""
    chosen = {}
    for ladder, rungs in (config.get("ladders") or {}).items():
        own = [rung_variant(ladder, rung) for rung in rungs]
        chosen[ladder] = own if set(own) & set(selected) else list(rungs)
    return chosen


def steps(ladders: dict[str, list[str]]) -> dict[str, str]:
    """Each rung above the first -> the rung below it."""
    return {
        rung: rungs[index - 1]
        for rungs in ladders.values()
        for index, rung in enumerate(rungs)
        if index > 0
    }
