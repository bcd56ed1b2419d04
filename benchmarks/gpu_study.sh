#!/usr/bin/env bash
# The GPU half of docs/benchmarks.md, run on a CUDA machine from the repository root:
# build the real CIFAR-10 archive in the official layout, then run the GPU variants through
# the workflow (the real `snakemake` entry point) and keep their tables and JSONs.
#
#   [EXTRA_CONFIG=more.yaml] [RECIPES=a,b] benchmarks/gpu_study.sh ARCHIVE OUT_DIR [STUDY_EPOCHS]
#
# ARCHIVE: a cifar-10-python.tar.gz, or a make_cifar10_archive.py that builds one. The
# study's GPU variants run STUDY_EPOCHS epochs (default 2: ten epochs of all of them take
# longer than a short GPU lease); the fast variants and recipes run their own.
set -euo pipefail
builder=$1 out=$2 study_epochs=${3:-2}
work=$(mktemp -d)
mkdir -p "$out"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda,
    "cuDNN", torch.backends.cudnn.version(), torch.cuda.get_device_name())'
nproc

if [[ $builder == *.py ]]; then
    python3 "$builder" "$work"
    archive=$work/cifar-10-python.tar.gz
else
    archive=$(realpath "$builder")
fi
printf 'data:\n  url: file://%s\n  md5: %s\n' "$archive" "$(md5sum "$archive" | cut -d' ' -f1)" \
    >"$work/data.yaml"

study() {  # NAME CONFIG...: one snakemake run; keep its table even if a variant failed
    local name=$1
    shift
    # shellcheck disable=SC2086 # EXTRA_CONFIG: more config files, space-separated
    python3 -m snakemake --cores "$(nproc)" --keep-going \
        --configfile "$work/data.yaml" ${EXTRA_CONFIG:-} --config "$@" ||
        echo "snakemake run '$name' failed"
    cp results/training_data.csv "$out/$name.csv" && cut -d, -f1-6 "$out/$name.csv" || true
}

study recipes "only=${RECIPES:-g-lenet-fast,g-recipe}"
study study-gpu "epochs=$study_epochs" only=g-fast,g-initial,g-torch.cuda.amp,g-b8-w2,g-b16-w4,\
g-b32-w4,g-b16w8,g-bn,g-lr,g-simplecnn-adam
tar czf "$out/results.tgz" results/*.json logs
