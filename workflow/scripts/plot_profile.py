"""Snakemake adapter: the ladder rungs' step profiles -> step_profile.png."""

import json
from pathlib import Path

from cifarbench.job import run
from cifarbench.step_profile_figure import step_profile


def plot_profile(*, profiles: list[str], ladders: dict[str, list[str]], figure: str) -> None:
    documents = {Path(path).stem: json.loads(Path(path).read_text()) for path in profiles}
    step_profile(documents, ladders, figure)


run(
    snakemake.log[0],
    plot_profile,
    profiles=list(snakemake.input.profiles),
    ladders=dict(snakemake.params.ladders),
    figure=snakemake.output.figure,
)
