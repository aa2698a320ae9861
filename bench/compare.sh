#!/usr/bin/env bash
# compare.sh times cnnc's generated models and PyTorch (shared/anchors/torch_anchor.py)
# on this machine, interleaved model by model and round by round (cnnc and PyTorch
# with the dnnl sgemm shim back to back, then PyTorch as installed; then the next
# model; then again), and prints one table with the paired ratios.
# See bench/README.md for what is measured and how to read it.
#
#   bench/compare.sh --models lenet5,mlp10   # ~7 min on a quiet machine (estimate)
#   bench/compare.sh                         # all four: ~15 min quiet (estimate); far longer when busy
#
# Options: --models LIST (lenet5,lenet5bn,vggsmall,mlp10), --rounds N (2), --reps N (3),
# --min-time S (1.0), --threads N (2), --out DIR (default: a new /tmp/cnnc-compare.*),
# --no-shim, --isa avx2 (on a CPU with AVX-512, both programs keep to AVX2, as on the
# anchors' AMD Zen 3: CNNC_AVX512=0 and ONEDNN_MAX_CPU_ISA=AVX2).
# Environment: ANCHORS (default ../shared/anchors from the repository root),
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
ISA_NOTE=
usage() {
	sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
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
	--isa)
		if [ "${2:-}" != avx2 ]; then
			echo "compare.sh: --isa takes avx2, not '${2:-}'; without --isa each program uses the widest ISA the CPU has" >&2
			exit 2
		fi
		export CNNC_AVX512=0 ONEDNN_MAX_CPU_ISA=AVX2
		ISA_NOTE="Both programs kept to AVX2 (--isa avx2: CNNC_AVX512=0, ONEDNN_MAX_CPU_ISA=AVX2)."
		shift 2
		;;
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

# torch_model prints torch_anchor.py's name for cnnc's model $1.
torch_model() {
	case $1 in
	lenet5) echo lenet ;;
	lenet5bn) echo lenet_bn ;;
	vggsmall) echo vgg_small ;;
	mlp10) echo mlp ;;
	esac
}
for m in ${MODELS//,/ }; do
	if [ -z "$(torch_model "$m")" ]; then
		echo "compare.sh: unknown model $m; the models are lenet5, lenet5bn, vggsmall, mlp10" >&2
		exit 2
	fi
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

torch() { # torch MODEL OUTFILE [LD_PRELOAD]
	(cd "$OUT/anchors" && env LD_PRELOAD="${3:-}" "$PYTHON" torch_anchor.py --threads "$THREADS" \
		--models "$1" --train-bs 64 --infer-bs 256 --reps "$REPS" --min-time "$MIN_TIME" \
		--out "$2") 2>&1 | tee "${2%.json}.log" >&2
}

# A round runs each model on its own: cnnc and PyTorch with the shim, the
# pair whose ratio the goals are stated in, one right after the other (cnnc
# first in odd rounds, PyTorch first in even ones, so that drift over a pair
# favours neither), then PyTorch as installed. Each ratio then compares
# figures taken about a minute apart rather than a whole round apart.
cnnc() { # cnnc MODEL ROUND
	log "round $2/$ROUNDS, $1: cnnc"
	"$OUT/cnncbench" run -no-prepare -models "$1" -threads "$THREADS" -reps "$REPS" \
		-min-time "$MIN_TIME" -out "$OUT/cnnc_r$2_$1.json" >"$OUT/cnnc_r$2_$1.txt"
}
shim() { # shim MODEL ROUND
	if [ -n "$SHIM" ]; then
		log "round $2/$ROUNDS, $1: PyTorch with the dnnl shim"
		torch "$(torch_model "$1")" "$OUT/torchshim_r$2_$1.json" "$SHIM"
	fi
}

CNNC_FILES= TORCH_FILES= SHIM_FILES=
for r in $(seq 1 "$ROUNDS"); do
	c= t= s=
	for m in ${MODELS//,/ }; do
		if [ $((r % 2)) = 1 ]; then
			cnnc "$m" "$r"
			shim "$m" "$r"
		else
			shim "$m" "$r"
			cnnc "$m" "$r"
		fi
		log "round $r/$ROUNDS, $m: PyTorch as installed"
		torch "$(torch_model "$m")" "$OUT/torch_r${r}_$m.json"
		c=${c:+$c+}$OUT/cnnc_r${r}_$m.json
		t=${t:+$t+}$OUT/torch_r${r}_$m.json
		s=${s:+$s+}$OUT/torchshim_r${r}_$m.json
	done
	CNNC_FILES=${CNNC_FILES:+$CNNC_FILES,}$c
	TORCH_FILES=${TORCH_FILES:+$TORCH_FILES,}$t
	SHIM_FILES=${SHIM_FILES:+$SHIM_FILES,}$s
done

"$OUT/cnncbench" compare -cnnc "$CNNC_FILES" -torch "$TORCH_FILES" ${SHIM:+-shim "$SHIM_FILES"} | tee "$OUT/table.md"
if [ -n "$ISA_NOTE" ]; then
	echo "$ISA_NOTE" | tee -a "$OUT/table.md"
fi
log "done in ${SECONDS}s; JSON, logs and table.md are in $OUT"
