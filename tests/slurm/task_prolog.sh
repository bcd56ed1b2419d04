#!/bin/sh
# SLURM TaskProlog: lines starting with "print " go to the task's standard output.
echo "print cluster-task: job=${SLURM_JOB_ID} step=${SLURM_STEP_ID:-batch} CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-unset}"
