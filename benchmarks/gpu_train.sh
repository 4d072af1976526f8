#!/usr/bin/env bash
# Train one environment's recipe model on a CUDA GPU inside a fixed wall-clock budget, then ship it.
#
#   benchmarks/gpu_train.sh WORK OUT SECONDS NAME=OVERRIDES [NAME=OVERRIDES ...]
#
# WORK holds the data and run directories, OUT receives each variant's shipped folder
# (OUT/NAME: config.json, float16 model.safetensors, training.json, metrics.jsonl).
# Every variant trains on the same file, at once (one process each), for the same number of
# steps; OVERRIDES is a comma-separated list of `lewm train --set` values.
#
# The step count is not guessed: a 200-step probe of all variants side by side measures the
# steps per second they reach together, and the runs get the steps that fit the seconds left,
# so each cosine schedule ends where its run ends. A probe that fails under bf16 autocast is
# repeated in fp32 (and the runs then train in fp32).
#
# Environment: COLLECT (the `lewm collect` arguments of the training file, without --out),
# PRESET (default small), DEVICE (default cuda), RESERVE (seconds kept for shipping after the
# runs, default 30), THREADS (CPU threads per run, default the CPU count over the variants),
# WORKERS (collection processes, default the CPU count), LEWM (the command that runs lewm,
# default `python3 -m lewm`). Used for the PushT GPU row of RESULTS.md
# (docs/results.md, "PushT on a GPU").
set -euo pipefail
WORK=$1 OUTDIR=$2 SECONDS_TOTAL=$3
shift 3
VARIANTS=("$@")
LEWM=${LEWM:-python3 -m lewm}
PRESET=${PRESET:-small}
WORKERS=${WORKERS:-$(nproc)}
THREADS=${THREADS:-$(( $(nproc) / ${#VARIANTS[@]} > 0 ? $(nproc) / ${#VARIANTS[@]} : 1 ))}
START=$(date +%s)
mkdir -p "$WORK" "$OUTDIR"
DATA=$WORK/train.h5

if [ ! -f "$DATA" ]; then
  # shellcheck disable=SC2086
  $LEWM collect $COLLECT --workers "$WORKERS" --out "$DATA" 2>&1 | tr '\r' '\n' | grep -v "ep/s" || true
fi
[ -f "$DATA" ] || { echo "error: collection wrote no $DATA" >&2; exit 1; }
sha256sum "$DATA"
echo "collected after $(( $(date +%s) - START )) s"

sets() {  # NAME=a=1,b=2 -> --set a=1 --set b=2
  local spec=${1#*=} item
  IFS=',' read -ra items <<<"$spec"
  for item in "${items[@]}"; do [ -n "$item" ] && printf -- '--set %s ' "$item"; done
}

train_all() {  # STEPS DIR_SUFFIX EXTRA_SETS LIMIT_S: every variant at once, each stopped
  # (SIGTERM) after LIMIT_S seconds; returns non-zero if any failed
  local steps=$1 suffix=$2 extra=$3 limit=$4 pids=() v name
  for v in "${VARIANTS[@]}"; do
    name=${v%%=*}
    # shellcheck disable=SC2046,SC2086
    OMP_NUM_THREADS=$THREADS timeout "$limit" $LEWM train --data "$DATA" --preset "$PRESET" --steps "$steps" --device "${DEVICE:-cuda}" --no-progress \
      $(sets "$v") --set train.in_memory=yes $extra --out "$WORK/$name$suffix" \
      >"$WORK/$name$suffix.log" 2>&1 &
    pids+=($!)
  done
  local rc=0 pid
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return $rc
}

rate() {  # the slowest variant's median steps/s over the probe's logging windows after the first
  python3 - "$WORK" "$1" "${VARIANTS[@]}" <<'EOF'
import json, sys
work, suffix, variants = sys.argv[1], sys.argv[2], sys.argv[3:]
rates = []
for v in variants:
    records = [json.loads(line) for line in open(f"{work}/{v.split('=')[0]}{suffix}/metrics.jsonl")]
    windows = sorted(r["steps_per_s"] for r in records if "steps_per_s" in r and r["step"] > 50)
    rates.append(windows[len(windows) // 2])
print(f"{min(rates):.3f}")
EOF
}

PRECISION=""
PROBE_START=$(date +%s)
PROBE="--set train.log_every=50 --set train.val_every=1000 --set train.save_every=1000"
if ! train_all 200 _probe "$PROBE" 300; then
  echo "the bf16 probe failed; its logs:" && tail -n 5 "$WORK"/*_probe.log
  PRECISION="--set train.precision=fp32"
  rm -rf "$WORK"/*_probe
  PROBE_START=$(date +%s)
  train_all 200 _probe "$PROBE $PRECISION" 300
fi
RATE=$(rate _probe)
PROBE_SECONDS=$(( $(date +%s) - PROBE_START ))
LEFT=$(( SECONDS_TOTAL - ($(date +%s) - START) ))
# start-up costs about what the probe's did beyond its 200 steps; 15 % of the rest is margin
STEPS=$(python3 -c "r=$RATE; s=$PROBE_SECONDS-200/r; print(max(200, int(($LEFT-s-${RESERVE:-30})*0.85*r)//100*100))")
echo "probe: $RATE steps/s per variant side by side ($PROBE_SECONDS s); $LEFT s left: $STEPS steps ${PRECISION:-(bf16 autocast)}"

# checkpoints every fifth of the run: a run still going at the deadline is stopped and its last
# checkpoint shipped (training.json then records the steps it reached)
DEADLINE=$(( SECONDS_TOTAL - ($(date +%s) - START) - ${RESERVE:-30} * 2 / 3 ))
(( DEADLINE >= 1 )) || DEADLINE=1
# validation every tenth of the run (the probe measured steps without it)
EVERY="--set train.save_every=$(( STEPS / 5 )) --set train.val_every=$(( STEPS / 10 ))"
train_all "$STEPS" "" "$EVERY $PRECISION" "$DEADLINE" || true
for v in "${VARIANTS[@]}"; do
  name=${v%%=*}
  shipped="nothing was shipped (no checkpoint yet)"
  if $LEWM results ship --run "$WORK/$name" --out "$OUTDIR/$name"; then
    cp "$WORK/$name/metrics.jsonl" "$OUTDIR/$name/"
    shipped="its last checkpoint was shipped"
  fi
  tail -n 5 "$WORK/$name.log"
  step=$(tail -n 1 "$WORK/$name/metrics.jsonl" 2>/dev/null | python3 -c \
    "import json, sys; print(json.loads(sys.stdin.read() or '{\"step\": 0}')['step'])")
  echo "$name: trained $step of $STEPS steps"
  [ "$step" = "$STEPS" ] || echo "$name: stopped at the deadline; $shipped"
done
echo "done after $(( $(date +%s) - START )) s"
