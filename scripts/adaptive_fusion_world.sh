#!/usr/bin/env bash
# Adaptive fusion artefacts for one world root (ROOT/world, ROOT/kb, ROOT/clip from `world make`, `kb import`,
# `train clip`), written to ROOT/fusion: KB copies calibrated with the template rewriter (kb_tv: train+val,
# kb_t: train only), DEQR with both regimes, SFT and PRO rewriters (fixed steps, ONNX exports), and KB copies
# calibrated with the PRO rewriter's rewrites (kb_tv_pro, kb_t_pro; averaged with the template's as `serve` does). `evdsearch bench quality` over the roots
# gives the tables (docs/rewriter.md). Stages already done are skipped, so a rerun resumes.
# Usage: scripts/adaptive_fusion_world.sh ROOT [STAGES]
#   STAGES: template (the served template KB, train+val), calibrate (template KBs), rewriters (DEQR, SFT, PRO,
#   PRO KBs) or all (default).
#   DEQR_IMAGES (default 6000) bounds the DEQR run; SFT_STEPS (2000) and PRO_STEPS (1200) the training, which runs
#   every step (--max-minutes 0: the CLI's 10-minute default bound cut a loaded run at about half the steps).
#   One job uses one core (OMP_NUM_THREADS=1): on 2 cores, three roots in parallel took 47-49 min each.
set -euo pipefail
R=${1:?usage: $0 ROOT [calibrate|rewriters|all]}
STAGES=${2:-all}
E=${EVDSEARCH:-$(dirname "$0")/../.venv/bin/evdsearch}
F=$R/fusion
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1} OMP_WAIT_POLICY=PASSIVE
mkdir -p "$F"

calibrated_copy() {  # KB copy NAME calibrated on SPLITS with REWRITER
  local name=$1 splits=$2 rewriter=$3
  [ -f "$F/.$name.calibrated" ] && return
  rm -rf "$F/$name" && cp -r "$R/kb" "$F/$name"
  "$E" kb calibrate --kb "$F/$name" --data "$R/world" --model "$R/clip" --splits "$splits" --rewriter "$rewriter" \
    --cache-dir "$F/cache" --device cpu
  touch "$F/.$name.calibrated"
}

if [ "$STAGES" != rewriters ]; then
  calibrated_copy kb_tv train,val template
  [ "$STAGES" = template ] || calibrated_copy kb_t train template
fi
[ "$STAGES" != template ] || exit 0
if [ "$STAGES" != calibrate ]; then
  # DEQR reads training captions only; the train-only calibration decides which names count as unknown.
  [ -f "$F/.kb_t.calibrated" ] || calibrated_copy kb_t train template
  [ -f "$F/deqr/stats.json" ] || "$E" train deqr --data "$R/world" --kb "$F/kb_t" --clip "$R/clip" --out "$F/deqr" \
    --regime both --max-images "${DEQR_IMAGES:-6000}" --device cpu --force
  [ -f "$F/sft/evdsearch_rewriter.json" ] || "$E" train rewriter --deqr "$F/deqr" --out "$F/sft" \
    --steps "${SFT_STEPS:-2000}" --max-minutes 0 --batch-size 32 --lr 2e-3 --warmup 50 --layers 2 --threads 1 \
    --device cpu --force
  [ -f "$F/pro/evdsearch_rewriter.json" ] || "$E" train rewriter-pro --deqr "$F/deqr" --base "$F/sft" --out "$F/pro" \
    --steps "${PRO_STEPS:-1200}" --max-minutes 0 --batch-size 16 --lr 3e-4 --warmup 30 --threads 1 \
    --device cpu --force
  for m in sft pro; do [ -d "$F/$m/onnx" ] || "$E" train export-onnx --rewriter "$F/$m"; done
  calibrated_copy kb_tv_pro train,val "$F/pro"
  calibrated_copy kb_t_pro train "$F/pro"
fi
echo "adaptive fusion artefacts of $R: $F"
