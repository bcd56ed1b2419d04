#!/usr/bin/env bash
# The GPU half of docs/results.md, on a CUDA machine, from the repository root: build the real
# CIFAR-10 archive, prepare the cache, then time the GPU ladder and the GPU variants side by
# side with benchmarks/reference_vs_workflow.py (the training job's own code, one process per
# arm, one arm at a time).
#
#   benchmarks/gpu_study.sh ARCHIVE OUT_DIR [LADDER_EPOCHS]
#
# ARCHIVE: a cifar-10-python.tar.gz, or a make_cifar10_archive.py that builds one. The ladder
# and the study's batch-4 variants run LADDER_EPOCHS epochs (default 2: ten epochs of each
# take longer than a short GPU lease); the recipes run their own.
set -euo pipefail
source=$1 out=$2 epochs=${3:-2}
work=$(mktemp -d)
mkdir -p "$out"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda,
    "cuDNN", torch.backends.cudnn.version(), torch.cuda.get_device_name())'

if [[ $source == *.py ]]; then
    python3 "$source" "$work" >/dev/null
    archive=$work/cifar-10-python.tar.gz
else
    archive=$(realpath "$source")
fi
python3 -c 'import sys; from cifarbench.archive import read_archive
from cifarbench.cache import save_cache
save_cache(read_archive(sys.argv[1]), sys.argv[2])' "$archive" "$work/cifar10.npz"

arms() {  # NAME EPOCHS ARMS: one side-by-side run, its table and JSON kept in OUT_DIR
    local name=$1 epochs=$2 arms=$3
    python3 benchmarks/reference_vs_workflow.py --cache "$work/cifar10.npz" ${epochs:+--epochs "$epochs"} \
        --arms "$arms" --json "$out/$name.json" 2>"$out/$name.log" | tee "$out/$name.txt"
}

ladder=$(python3 -c 'import yaml; print(",".join(yaml.safe_load(open("config.yaml"))["ladders"]["gpu"]))')
arms gpu-ladder "$epochs" "$ladder"
arms gpu-recipes "" g-lenet-fast,g-recipe
arms gpu-study "$epochs" g-torch.cuda.amp,g-b8-w2,g-b16-w4,g-b32-w4,g-b16w8
