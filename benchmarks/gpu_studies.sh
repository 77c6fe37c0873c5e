#!/usr/bin/env bash
# The packed full-scale studies on one GPU (issue 19), as one device call; benchmarks/README.md,
# "Packed runs", has the plan of the visit and what to carry.
#
#   bash benchmarks/gpu_studies.sh --out "$OUT"                  # on the GPU machine (at most TOTAL s)
#   bash benchmarks/gpu_studies.sh --dry-run --out /tmp/gstudies # here, on the CPU: the same steps, tiny
#
# Parts, in order, each under a timeout clamped to what is left of TOTAL:
#   speed   benchmarks/train_speed.py --pack N: aggregate steps/s of N VGG-19 runs (batch 128, bf16)
#           packed against the same runs one at a time, same process
#   run     effconv experiment run all --scale 1 --pack N --budget-s <what is left> --allow-over-budget:
#           the plan (probe, prediction, visits) and its first visit trained packed; the runs a visit
#           cannot hold are planned last, so the first visit holds the runs that fit
#   files   every run folder's small files (config.json, metrics.jsonl/.csv, experiment.json,
#           curve.png; no checkpoints) into $OUT/runs/<study>/<label>/, the reports of the studies
#           whose runs are all there into $OUT/reports (--no-costs: Mult-Adds do not depend on the
#           device, add them here with `effconv experiment report`), and a short table printed last
# --part speed|run|all (default all) runs one part; the run folders stay in $RUNS (/tmp survives
# between calls while the machine is warm), so a second `--part run` call trains the next visit.
set -u
OUT="" DRY=0 PART=all TOTAL="" PACK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    --part) PART="$2"; shift 2 ;;
    --total-s) TOTAL="$2"; shift 2 ;;
    --pack) PACK="$2"; shift 2 ;;
    *) echo "gpu_studies.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$OUT" ] || { echo "gpu_studies.sh: --out DIR is required" >&2; exit 2; }
case "$PART" in speed|run|all) ;; *) echo "gpu_studies.sh: --part speed, run or all" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
mkdir -p "$OUT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
START=$(date +%s)
left() { echo $(( TOTAL - ($(date +%s) - START) )); }

if [ "$DRY" = 1 ]; then
  PY=${PYTHON:-python}; TOTAL=${TOTAL:-300}; PACK=${PACK:-4}
  RUNS=${RUNS:-$OUT/work}; DATA=${DATA:-../shared/data/cifar10-jpg.tar.xz}
  export EFFCONV_CACHE=${EFFCONV_CACHE:-$OUT/cache}
  SPEED=(--pack 3 --scale small --steps 10 --rounds 1)
  RUN=(--scale 0.0002 --width-mult 0.125 --evals 2 --eval-images 100 --batch-size 16 --threads 1 --device cpu --probe-s 0.2)
  WHERE="dry run on $(uname -n) (CPU)"
else
  PY=${PYTHON:-python3}; TOTAL=${TOTAL:-540}; PACK=${PACK:-11}
  RUNS=${RUNS:-/tmp/effconv-studies}; DATA=${DATA:-.device/cifar10-jpg.tar.xz}
  export EFFCONV_CACHE=${EFFCONV_CACHE:-/tmp/effconv-cache}
  SPEED=(--pack "$PACK" --spec vgg19_3x3 --batch-size 128 --precision bf16 --steps 200 --rounds 1)
  RUN=(--scale 1 --precision bf16 --device cuda --probe-s 0.5)
  WHERE="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
fi
echo "gpu_studies: $WHERE; pack $PACK; total ${TOTAL} s; runs in $RUNS; data $DATA" | tee "$OUT/visit.txt"

if [ "$PART" != run ]; then  # speed: at most 120 s (about 60 expected on an H200)
  cap=$(( $(left) < 120 ? $(left) : 120 ))
  timeout "$cap" "$PY" benchmarks/train_speed.py "${SPEED[@]}" 2>&1 | tee "$OUT/train_speed.txt"
  echo "speed: exit ${PIPESTATUS[0]} after $(( $(date +%s) - START )) s" | tee -a "$OUT/visit.txt"
fi

if [ "$PART" != speed ]; then  # run: what is left, less 40 s for the files and reports
  budget=$(( $(left) - 40 ))
  if [ "$budget" -lt 30 ]; then
    echo "run: skipped, ${budget} s left" | tee -a "$OUT/visit.txt"
  else
    timeout $(( budget + 20 )) "$PY" -m effconv experiment run all "${RUN[@]}" --pack "$PACK" --budget-s "$budget" \
      --allow-over-budget --data "$DATA" --out "$RUNS" 2>&1 | tee "$OUT/run.txt"
    echo "run: exit ${PIPESTATUS[0]} (budget ${budget} s) after $(( $(date +%s) - START )) s" | tee -a "$OUT/visit.txt"
  fi
fi

# files: small files of every run, the reports that can be written, the short table
for dir in "$RUNS"/*/*/; do
  [ -f "$dir/config.json" ] || continue
  dst="$OUT/runs/$(basename "$(dirname "$dir")")/$(basename "$dir")"
  mkdir -p "$dst"
  for f in config.json metrics.jsonl metrics.csv experiment.json curve.png; do
    [ -f "$dir/$f" ] && cp "$dir/$f" "$dst/"
  done
done
for study in kernel-size optimizer activation batch-norm; do
  [ -d "$RUNS/$study" ] || continue
  "$PY" -m effconv experiment report "$study" --out "$RUNS/$study" --report-dir "$OUT/reports" --no-costs \
    --note "trained by benchmarks/gpu_studies.sh on $WHERE, $(date -u +%Y-%m-%d), packed $PACK at a time" \
    >"$OUT/report-$study.txt" 2>&1 && echo "report: $study" || echo "report: $study not written ($(tail -1 "$OUT/report-$study.txt"))"
done | tee -a "$OUT/visit.txt"
"$PY" - "$OUT" <<'EOF' | tee -a "$OUT/visit.txt"
import json, pathlib, re, sys
out = pathlib.Path(sys.argv[1])
speed = (out / "train_speed.txt").read_text() if (out / "train_speed.txt").is_file() else ""
for pattern in (r"one at a time:.*", r"packed \d+ *:.*", r"packed / one at a time:.*"):
    found = re.search(pattern, speed)
    print(found.group(0) if found else f"{pattern.split(':')[0]}: not measured")
print(f"{'run':26s} {'status':9s} {'steps':>15s}  stopped")
for meta_path in sorted(out.glob("runs/*/*/experiment.json")):
    meta = json.loads(meta_path.read_text())
    rows = (meta_path.parent / "metrics.jsonl").read_text().splitlines() if (meta_path.parent / "metrics.jsonl").is_file() else []
    cfg = json.loads((meta_path.parent / "config.json").read_text())
    step = json.loads(rows[-1])["step"] if rows else 0
    print(f"{meta['experiment'] + '/' + meta['label']:26s} {meta.get('status', '?'):9s} {step:>7,}/{cfg.get('total_steps', 0):<7,}  "
          f"{meta.get('stopped', '') if meta.get('status') != 'complete' else ''}")
EOF
echo "gpu_studies: done in $(( $(date +%s) - START )) s"
