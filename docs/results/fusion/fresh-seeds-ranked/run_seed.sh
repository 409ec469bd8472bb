#!/usr/bin/env bash
# Issue 12, second fresh set: worlds + base CLIPs + the adaptive-fusion pipeline for seeds 7304-7306
# (never used in development; s7301 becomes a development world from this session on).
set -euo pipefail
E=/work/main/.venv/bin/evdsearch
s=$1
d=/work/seeds/s$s
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
[ -f $d/world/world.json ] || $E world make --out $d/world --seed $s
[ -f $d/kb/data.mdb ] || $E kb import $d/world/encyclopedia.jsonl --kb $d/kb
[ -f $d/clip/open_clip_model.safetensors ] || $E train clip --data $d/world --model evd-tiny --out $d/clip --steps 500 --threads 1 --save-every 100 --resume
echo "clip $s done $(date)"
/work/main/scripts/adaptive_fusion_world.sh $d all
echo "pipeline $s done $(date)"
