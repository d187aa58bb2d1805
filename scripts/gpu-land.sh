#!/usr/bin/env bash
# What landing a change to templates/ takes on the GPU machine, in one device call. Every shipped cost
# model (bench/tuning/cost-models.json) is keyed by the timing key of today's templates (every source
# but the host planner's, plus the golden plans: codegen/family.ts), so any edit to the kernels' side,
# a comment too, or to the plans re-keys them all (test/family.test.ts fails until they are re-fitted).
# This script:
#   1. builds the families that ship a model for this GPU, while the GPU suite runs;
#   2. re-tunes each (`podgen tune --family`), which replaces its model in the tree's store;
#   3. runs compute-sanitizer's memcheck, racecheck and synccheck on the suite's sanitize: cases.
# Results under $OUT: gpu-suite.json, tune-family-<family>.json, cost-models.json (copy it over
# bench/tuning/cost-models.json), sanitizers-<tool>.json, and logs/. The last line is a summary.
#
# gpu-bundle.ts copies it into the bundle as .gpu/land.sh, beside run.sh and podgen. Usage, with
# the device tool, from the repository root: run {command: "bash .gpu/land.sh", carry: [".gpu"]}.
#   bash .gpu/land.sh --list   prints, for each GPU in the store, the families it has models of
#   bash .gpu/land.sh --only suite,tune   runs only those steps (suite, tune, sanitize): the whole
#     script can outlast one device command (10 minutes), so it splits over two calls on the warm
#     machine; the build cache ($PODGEN_CACHE_DIR, in /tmp) outlives a call while the machine is held
# It re-tunes the families that have a model for the card it runs on: on a card the store has no
# models for (an H200 when the shipped models are the H100's) it stops (exit 3), unless
# PODGEN_LAND_FAMILIES names families to fit models of for that card, or the steps leave out the
# tune (--only suite,sanitize checks a change on any card).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
store="$root/bench/tuning/cost-models.json"
[ -f "$store" ] || { echo "land.sh: no cost model store at $store" >&2; exit 2; }
# The store as writeCostModel writes it (JSON.stringify, 2 spaces): one "gpu" line, then one
# "family" line, a model.
families_for() { awk -v gpu="$1" '
  /^ *"gpu": / { g = $0; sub(/^ *"gpu": "/, "", g); sub(/",$/, "", g) }
  /^ *"family": / { f = $0; sub(/^ *"family": "/, "", f); sub(/",$/, "", f); if (g == gpu) print f }' "$store" | sort -u; }
store_gpus() { sed -n 's/^ *"gpu": "\(.*\)",$/\1/p' "$store" | sort -u; }

if [ "${1:-}" = "--list" ]; then
  store_gpus | while read -r g; do echo "$g: $(families_for "$g" | tr '\n' ' ')"; done
  exit 0
fi
steps="suite tune sanitize"
if [ "${1:-}" = "--only" ]; then
  [ -n "${2:-}" ] || { echo "land.sh: --only needs a comma-separated list of steps (suite, tune, sanitize)" >&2; exit 2; }
  steps="${2//,/ }"
  for s in $steps; do
    case "$s" in suite|tune|sanitize) ;; *) echo "land.sh: --only: unknown step '$s' (the steps: suite, tune, sanitize)" >&2; exit 2 ;; esac
  done
  shift 2
fi
[ $# -eq 0 ] || { echo "land.sh: unknown argument '$1' (only --list, or --only STEPS)" >&2; exit 2; }
has() { case " $steps " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
command -v nvidia-smi >/dev/null 2>&1 || { echo "land.sh: no GPU here (nvidia-smi not found)" >&2; exit 3; }
card="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
families="${PODGEN_LAND_FAMILIES:-$(families_for "$card")}"
if [ -z "$families" ] && has tune; then
  echo "land.sh: the store has no models for this GPU ('$card'; it has: $(store_gpus | tr '\n' ';')); run it on one of those, or set PODGEN_LAND_FAMILIES to fit models for this one" >&2
  exit 3
fi

out="${OUT:-$here/out}"
logs="$out/logs"
mkdir -p "$logs"
export PODGEN_CACHE_DIR="${PODGEN_CACHE_DIR:-${TMPDIR:-/tmp}/podgen-land-cache}"
t0=$(date +%s)
step() { echo "$1 ($(( $(date +%s) - t0 )) s)"; }
failed=()

# 1. Compiling takes the CPUs and the suite the GPU, so they overlap; the suite's timings assert nothing.
if has tune; then
  # shellcheck disable=SC2086  # $families is a list of names
  ( bash "$here/podgen" build $families -j 12 > "$logs/build.log" 2>&1; echo $? > "$logs/build.rc" ) &
fi
if has suite; then
  OUT="$out" bash "$here/run.sh" > "$logs/suite.log" 2>&1 || failed+=("suite")
  step "suite: $(tail -n 1 "$logs/suite.log")"
fi
wait
if has tune; then
  [ "$(cat "$logs/build.rc")" = 0 ] || failed+=("build")
  step "build of $(echo $families | wc -w) families: exit $(cat "$logs/build.rc")"
  # 2. One family at a time: the tune times candidates, so nothing else runs beside it.
  for f in $families; do
    bash "$here/podgen" tune --family "$f" --out "$out/tune-family-${f%_auto}.json" > "$logs/tune-$f.log" 2>&1 || failed+=("tune $f")
    step "tune $f: $(grep -E '^fit:' "$logs/tune-$f.log" | head -1)"
    cp "$store" "$out/cost-models.json" # after each, so a call cut off at its time limit keeps the finished ones
  done
fi

# 3. The sanitize: cases skip themselves unless the tool's --error-exitcode makes findings fail the run.
has sanitize && for tool in memcheck racecheck synccheck; do
  mkdir -p "$out/san-$tool"
  OUT="$out/san-$tool" PODGEN_WRAP="compute-sanitizer --tool $tool --error-exitcode 9" \
    bash "$here/run.sh" --filter "sanitize:" > "$logs/sanitize-$tool.log" 2>&1 || failed+=("$tool")
  [ -f "$out/san-$tool/gpu-suite.json" ] && mv "$out/san-$tool/gpu-suite.json" "$out/sanitizers-$tool.json"
  rmdir "$out/san-$tool" 2>/dev/null
  step "$tool: $(tail -n 1 "$logs/sanitize-$tool.log")"
done

if [ ${#failed[@]} -eq 0 ]; then
  done_steps=()
  has suite && done_steps+=("suite")
  has tune && done_steps+=("$(echo $families | wc -w) re-tunes")
  has sanitize && done_steps+=("3 sanitizers")
  summary="$(printf '%s, ' "${done_steps[@]}")"
  summary="${summary%, }"
  echo "land: ${summary/%, 3 sanitizers/ and 3 sanitizers} passed on $card$(has tune && echo "; copy $out/cost-models.json to bench/tuning/")"
else
  echo "land: FAILED: ${failed[*]} (logs in $logs)"
  exit 1
fi
