#!/usr/bin/env bash
# One world seed, several knowledge bases: the world and its tiny CLIP are made once under ROOT, then each
# SOURCE=FILE (a JSONL for `kb import`) gets its own root ROOT/kb-SOURCE (world and clip linked) with the
# served configuration built from that file alone: kb import, template- and PRO-calibrated KB copies, DEQR,
# SFT, PRO (scripts/adaptive_fusion_world.sh). Stages already done are skipped, so a rerun resumes.
# Usage: scripts/kb_sources_world.sh ROOT SEED SOURCE=FILE [SOURCE=FILE ...]
#   e.g. scripts/kb_sources_world.sh worlds/s7311 7311 encyclopedia=worlds/s7311/world/encyclopedia.jsonl \
#        qwen=training/shapes_world/evds/qwen2.5-1.5b.jsonl smollm2=docs/results/evd/smollm2_evds.jsonl
# PARALLEL (default 1) builds that many sources at once, one core each; STAGES (default all) is passed to
# adaptive_fusion_world.sh (template: only the template-calibrated KB that bench quality --rewriter template reads).
set -euo pipefail
R=${1:?usage: $0 ROOT SEED SOURCE=FILE ...}; SEED=${2:?seed}; shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
E=${EVDSEARCH:-$HERE/../.venv/bin/evdsearch}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
mkdir -p "$R"
[ -f "$R/world/world.json" ] || "$E" world make --out "$R/world" --seed "$SEED"
[ -f "$R/clip/open_clip_config.json" ] || "$E" train clip --data "$R/world" --model evd-tiny --out "$R/clip" \
  --threads 1 --device cpu
build() {  # one source's root
  local name=${1%%=*} file=${1#*=} S="$R/kb-${1%%=*}"
  mkdir -p "$S/fusion"
  ln -sfn ../world "$S/world"; ln -sfn ../clip "$S/clip"; ln -sfn ../../cache "$S/fusion/cache"  # image embeddings
  [ -d "$S/kb" ] || "$E" kb import "$file" --kb "$S/kb"
  EVDSEARCH="$E" "$HERE/adaptive_fusion_world.sh" "$S" "${STAGES:-all}" > "$S/fusion.log" 2>&1
  echo "$name: $S ($(date +%H:%M))"
}
[ -n "${1:-}" ] || exit 0
build "$1"  # the first source alone: it embeds the world's images into the shared cache
shift
running=0
for spec in "$@"; do
  build "$spec" &
  running=$((running + 1))
  if [ "$running" -ge "${PARALLEL:-1}" ]; then wait -n; running=$((running - 1)); fi
done
wait
