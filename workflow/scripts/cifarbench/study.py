"""The study's own numbers, as its report gives them: measured on its laptop GPU under WSL2."""

# variant -> (training time s, accuracy %, memory MB); None where the report gives none.
STUDY_RESULTS = {
    "cpu": (293.87, 62.07, 662.47),
    "g-initial": (404.15, 61.02, 994.33),
    "g-torch.cuda.amp": (526.15, 62.47, 1062.43),
    "g-b32-w4": (66.44, 60.39, 977.11),
    "g-b16-w4": (113.21, 64.91, 988.84),
    "g-b16w8": (109.48, 62.77, 994.29),
    "g-bn": (None, 51.08, None),
    "g-lr": (None, 57.38, None),
}
STUDY_MACHINE = "the study's laptop GPU (WSL2)"
# Its `cpu` row ran on the same laptop's CPU; every row of its table trained 10 epochs.
STUDY_CPU_MACHINE = "the study's laptop CPU (WSL2)"
STUDY_EPOCHS = 10


def study_machine(variant: str) -> str:
    return STUDY_CPU_MACHINE if variant == "cpu" else STUDY_MACHINE


def study_value(variant: str, index: int) -> float | None:
    row = STUDY_RESULTS.get(variant)
    return row[index] if row else None
