#!/usr/bin/env bash
# EX2 with Qwen2.5-Coder-1.5B on a CPU: the largest run that fitted beside the KB study (2 GRPO steps, one answer
# per concept). Needs `evdsearch llm install qwen2.5-1.5b` and a world root from `scripts/seed_world.sh 7311`.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
S=${SEEDS:-runs/seeds}/s7311
OMP_NUM_THREADS=1 .venv/bin/evdsearch train ex2 --data "$S/world" --model "$S/clip" --llm qwen2.5-1.5b \
  --out runs/desc/ex2-qwen --train-concepts 0 --steps 2 --num-generations 4 --prompts-per-step 2 \
  --max-new-tokens 24 --per-concept 1 --eval-concepts 2 --batch-size 8 --threads 1
