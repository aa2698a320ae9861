#!/usr/bin/env bash
# compare.sh times cnnc's generated models and PyTorch (shared/anchors/torch_anchor.py)
# on this machine, interleaved round by round (cnnc, PyTorch as installed, PyTorch
# with the dnnl sgemm shim; then again), and prints one table with the paired ratios.
# See bench/README.md for what is measured and how to read it.
#
#   bench/compare.sh --models lenet5,mlp10   # ~7 min on a quiet machine (estimate)
#   bench/compare.sh                         # all four: ~15 min quiet (estimate); far longer when busy
#
# Options: --models LIST (lenet5,lenet5bn,vggsmall,mlp10), --rounds N (2), --reps N (3),
# --min-time S (1.0), --threads N (2), --out DIR (default: a new /tmp/cnnc-compare.*),
# --no-shim. Environment: ANCHORS (default ../shared/anchors from the repository root),
# PYTHON (/usr/bin/python3, the interpreter with torch), and anchorlib's noise gate:
# ANCHOR_QUIET_MAX (0.05), ANCHOR_QUIET_TIMEOUT (here 2 s by default, not 300),
# ANCHOR_MAX_RETRIES (here 1, not 4); cnncbench reads the same three.
set -euo pipefail

MODELS=lenet5,lenet5bn,vggsmall,mlp10
ROUNDS=2
REPS=3
MIN_TIME=1.0
THREADS=2
OUT=
SHIM_WANTED=1
usage() {
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
}
while [ $# -gt 0 ]; do
	case "$1" in
	--models) MODELS=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--reps) REPS=$2; shift 2 ;;
	--min-time) MIN_TIME=$2; shift 2 ;;
	--threads) THREADS=$2; shift 2 ;;
	--out) OUT=$2; shift 2 ;;
	--no-shim) SHIM_WANTED=0; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "compare.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ANCHORS=${ANCHORS:-$ROOT/../shared/anchors}
PYTHON=${PYTHON:-/usr/bin/python3}
export ANCHOR_QUIET_TIMEOUT=${ANCHOR_QUIET_TIMEOUT:-2}
export ANCHOR_MAX_RETRIES=${ANCHOR_MAX_RETRIES:-1}
export ANCHOR_QUIET_MAX=${ANCHOR_QUIET_MAX:-0.05}
OUT=${OUT:-$(mktemp -d /tmp/cnnc-compare.XXXXXX)}
mkdir -p "$OUT"
log() { echo "compare.sh: $(date +%T) $*" >&2; }

# cnnc's model names -> torch_anchor.py's.
TORCH_MODELS=
for m in ${MODELS//,/ }; do
	case $m in
	lenet5) t=lenet ;;
	lenet5bn) t=lenet_bn ;;
	vggsmall) t=vgg_small ;;
	mlp10) t=mlp ;;
	*) echo "compare.sh: unknown model $m; the models are lenet5, lenet5bn, vggsmall, mlp10" >&2; exit 2 ;;
	esac
	TORCH_MODELS=${TORCH_MODELS:+$TORCH_MODELS,}$t
done

# The anchors run from a copy, never from shared/.
rm -rf "$OUT/anchors"
cp -r "$ANCHORS" "$OUT/anchors"
SHIM=
if [ "$SHIM_WANTED" = 1 ]; then
	if (cd "$OUT/anchors" && gcc -O2 -shared -fPIC sgemm_dnnl_shim.c -o libsgemm_dnnl_shim.so -l:libdnnl.so.2) >"$OUT/shim_build.log" 2>&1; then
		SHIM=$OUT/anchors/libsgemm_dnnl_shim.so
	else
		log "the dnnl shim did not build (see $OUT/shim_build.log): no shim column"
	fi
fi

cd "$ROOT"
log "build cnncbench, compile $MODELS for batch 256 and 1, build the timing program"
go build -o "$OUT/cnncbench" ./bench/cmd/cnncbench
"$OUT/cnncbench" prepare -models "$MODELS" >/dev/null

torch() { # torch() OUTFILE [LD_PRELOAD]
	(cd "$OUT/anchors" && env LD_PRELOAD="${2:-}" "$PYTHON" torch_anchor.py --threads "$THREADS" \
		--models "$TORCH_MODELS" --train-bs 64 --infer-bs 256 --reps "$REPS" --min-time "$MIN_TIME" \
		--out "$1") 2>&1 | tee "${1%.json}.log" >&2
}

CNNC_FILES= TORCH_FILES= SHIM_FILES=
for r in $(seq 1 "$ROUNDS"); do
	log "round $r/$ROUNDS: cnnc"
	"$OUT/cnncbench" run -no-prepare -models "$MODELS" -threads "$THREADS" -reps "$REPS" \
		-min-time "$MIN_TIME" -out "$OUT/cnnc_r$r.json" >"$OUT/cnnc_r$r.txt"
	CNNC_FILES=${CNNC_FILES:+$CNNC_FILES,}$OUT/cnnc_r$r.json
	log "round $r/$ROUNDS: PyTorch as installed"
	torch "$OUT/torch_r$r.json"
	TORCH_FILES=${TORCH_FILES:+$TORCH_FILES,}$OUT/torch_r$r.json
	if [ -n "$SHIM" ]; then
		log "round $r/$ROUNDS: PyTorch with the dnnl shim"
		torch "$OUT/torchshim_r$r.json" "$SHIM"
		SHIM_FILES=${SHIM_FILES:+$SHIM_FILES,}$OUT/torchshim_r$r.json
	fi
done

"$OUT/cnncbench" compare -cnnc "$CNNC_FILES" -torch "$TORCH_FILES" ${SHIM:+-shim "$SHIM_FILES"} | tee "$OUT/table.md"
log "done in ${SECONDS}s; JSON, logs and table.md are in $OUT"
