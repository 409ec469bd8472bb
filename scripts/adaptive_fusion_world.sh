#!/usr/bin/env bash
# Adaptive fusion artefacts for one world root (ROOT/world, ROOT/kb, ROOT/clip from `world make`, `kb import`,
# `train clip`), written to ROOT/fusion: two calibrated KB copies (train+val, train only), DEQR with both regimes,
# SFT and PRO rewriters. Then `evdsearch bench quality` over the roots gives the table (docs/rewriter.md).
# Usage: scripts/adaptive_fusion_world.sh ROOT [MAX_MINUTES_PER_STAGE] [STAGES]
#   STAGES: calibrate, rewriters or all (default); DEQR_IMAGES (default 1500) bounds the DEQR run.
set -euo pipefail
R=${1:?usage: $0 ROOT [MAX_MINUTES]}
M=${2:-6}
STAGES=${3:-all}
E=${EVDSEARCH:-$(dirname "$0")/../.venv/bin/evdsearch}
F=$R/fusion
mkdir -p "$F"
for v in tv t; do
  [ -f "$F/kb_$v/data.mdb" ] || { rm -rf "$F/kb_$v"; cp -r "$R/kb" "$F/kb_$v"; }
done
if [ "$STAGES" != rewriters ]; then
  "$E" kb calibrate --kb "$F/kb_tv" --data "$R/world" --model "$R/clip" --splits train,val --cache-dir "$F/cache"
  "$E" kb calibrate --kb "$F/kb_t" --data "$R/world" --model "$R/clip" --splits train --cache-dir "$F/cache"
fi
if [ "$STAGES" != calibrate ]; then
  # DEQR reads training captions only; the train-only calibration decides which names count as unknown.
  "$E" train deqr --data "$R/world" --kb "$F/kb_t" --clip "$R/clip" --out "$F/deqr" --regime both \
    --max-images "${DEQR_IMAGES:-1500}" --force
  "$E" train rewriter --deqr "$F/deqr" --out "$F/sft" --max-minutes "$M" --force
  "$E" train rewriter-pro --deqr "$F/deqr" --base "$F/sft" --out "$F/pro" --max-minutes "$M" --force
fi
echo "adaptive fusion artefacts of $R: $F"
