#!/usr/bin/env bash
# development rewriter on seed 7311 (CLIP already trained): KB, DEQR (masked), SFT, PRO (reduced steps), ONNX
set -euo pipefail
E=/work/wt-rewriter/.venv/bin/evdsearch
R=/work/seeds/s7311
D=/work/rwdev
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
[ -f $D/kb/current/data.mdb ] || $E kb import $R/world/encyclopedia.jsonl --kb $D/kb
[ -f $D/deqr/stats.json ] || $E train deqr --data $R/world --kb $D/kb --clip $R/clip --out $D/deqr --regime masked --max-images 2000 --device cpu --force
[ -f $D/sft/evdsearch_rewriter.json ] || $E train rewriter --deqr $D/deqr --out $D/sft --steps 700 --max-minutes 0 --batch-size 32 --lr 2e-3 --warmup 50 --layers 2 --threads 1 --device cpu --force
[ -f $D/pro/evdsearch_rewriter.json ] || $E train rewriter-pro --deqr $D/deqr --base $D/sft --out $D/pro --steps 250 --max-minutes 0 --batch-size 16 --lr 3e-4 --warmup 30 --threads 1 --device cpu --force
echo done
