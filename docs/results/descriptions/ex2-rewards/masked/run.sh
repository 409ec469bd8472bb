#!/bin/bash
cd "$(dirname "$0")/../../../.."  # the checkout's root
export OMP_NUM_THREADS=2 PYTHONUNBUFFERED=1
exec evdsearch train ex2 --data /work/seeds/s0/world --model /work/seeds/s0/desc/clip-reward \
  --out /work/seeds/s0/desc/ex2-m --train-concepts 0 --reward contrastive --mask-names --beta 0.1 --lr 1e-3 --max-new-tokens 16 \
  --num-generations 8 --prompts-per-step 2 --steps 128 --per-concept 25 --best-of 2 --batch-size 64 --threads 2
