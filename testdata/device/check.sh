#!/usr/bin/env bash
# check.sh runs the CUDA target's device check on a machine with an NVIDIA
# GPU, where Go need not be installed: the check is two programs built here
# beforehand, from the repository root,
#
#   CGO_ENABLED=0 go build -o testdata/device/bin/cudacheck ./testdata/device/cudacheck
#   CGO_ENABLED=0 go build -o testdata/device/bin/train-lenet5 ./gen/lenet5/cmd/train
#
# and carried along (testdata/device/bin is ignored by git; with the device
# tool: carry ["testdata/device/bin"], command testdata/device/check.sh).
# It runs
#
#   1. bin/train-lenet5, LeNet-5's generated trainer, if it was built: one
#      epoch on at most 6000 images (the embedded Fashion-MNIST subset
#      where /usr/share/datasets has none) with -device cuda, which trains
#      and evaluates on the GPU with the SGD step on the device, saves a
#      checkpoint to $OUT/lenet5-cuda.safetensors, and then evaluates that
#      checkpoint with -device cpu: the two test accuracies should agree;
#   2. bin/cudacheck (comparison with the reference evaluator, one epoch of
#      LeNet-5 on Fashion-MNIST, timings with CUDA graphs and without,
#      CNNC_CUDA_GRAPHS=0, as columns cnnc and cnnc-nograph);
#   3. torch_bench.py (PyTorch eager CUDA on the same models);
#
# and prints the timings side by side. Output and logs go to $OUT (or
# testdata/device/out). Extra arguments go to cudacheck, such as -skip bench
# or -only lenet5,vggsmall.
#
# With -tf32 (passed to cudacheck), the models and op cases that have
# convolutions are also compared and timed compiled with cnnc compile
# -cuda-tf32 (the convolutions on the tensor cores), as column cnnc-tf32.
#
# Exit status: 0 if every comparison passed and all programs ran.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/out}
mkdir -p "$out"
bin=$here/bin/cudacheck
if [[ ! -x $bin ]]; then
	echo "check.sh: $bin is missing; build it with: CGO_ENABLED=0 go build -o testdata/device/bin/cudacheck ./testdata/device/cudacheck" >&2
	exit 2
fi

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 || echo "nvidia-smi failed"
ls -d /usr/local/cuda*/lib64/libnvrtc.so* 2>/dev/null | head -3

echo
echo "== generated trainer: gen/lenet5/cmd/train -device cuda"
rc_train=0
train=$here/bin/train-lenet5
if [[ -x $train ]]; then
	ck=$out/lenet5-cuda.safetensors
	timeout "${TRAIN_TIMEOUT:-120}" "$train" -device cuda -epochs 1 -limit 6000 -save "$ck" 2>&1 | tee "$out/train-lenet5.log"
	rc_train=${PIPESTATUS[0]}
	if [[ $rc_train -eq 0 ]]; then
		timeout 120 "$train" -device cpu -eval-only -load "$ck" -limit 6000 2>&1 | tee -a "$out/train-lenet5.log"
		rc_train=${PIPESTATUS[0]}
	fi
	gpu_acc=$(sed -n 's/^final test accuracy \([0-9.]*\)%.*/\1/p' "$out/train-lenet5.log")
	cpu_acc=$(sed -n 's/^test accuracy \([0-9.]*\)%.*/\1/p' "$out/train-lenet5.log")
	echo "test accuracy: trained and evaluated on the GPU ${gpu_acc:-?}%, its checkpoint evaluated on the CPU ${cpu_acc:-?}%"
	echo "train-lenet5 exit status: $rc_train"
else
	echo "skipped: $train is missing; build it with: CGO_ENABLED=0 go build -o testdata/device/bin/train-lenet5 ./gen/lenet5/cmd/train"
fi

echo
echo "== cudacheck"
timeout "${CUDACHECK_TIMEOUT:-420}" "$bin" -require-gpu -tsv "$out/cudacheck.tsv" "$@" 2>&1 | tee "$out/cudacheck.log"
rc_check=${PIPESTATUS[0]}
echo "cudacheck exit status: $rc_check"

echo
echo "== PyTorch eager CUDA"
timeout "${TORCH_TIMEOUT:-180}" python3 "$here/torch_bench.py" --tsv "$out/torch.tsv" 2>&1 | tee "$out/torch.log"
rc_torch=${PIPESTATUS[0]}
echo "torch_bench exit status: $rc_torch"

echo
echo "== summary: images per second (higher is better)"
python3 - "$out/cudacheck.tsv" "$out/torch.tsv" <<'EOF'
import sys, collections
rows = collections.defaultdict(dict)
extra = []
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()[1:]
    except OSError:
        continue
    for line in lines:
        impl, model, batch, metric, value, unit = line.split('\t')
        if metric in ('train_images_per_s', 'infer_images_per_s'):
            rows[(model, int(batch), metric.split('_')[0])][impl] = float(value)
        else:
            extra.append(f'{impl} {model} batch {batch}: {metric} = {float(value):.4g} {unit}')
impls = ['cnnc', 'cnnc-nograph', 'cnnc-tf32', 'torch', 'torch-async', 'torch-h2d']
print(f"{'model':10s} {'batch':>5s} {'mode':6s} " + ' '.join(f'{i:>12s}' for i in impls) + f" {'cnnc/torch':>11s}")
for (model, batch, mode), v in sorted(rows.items()):
    cells = ' '.join(f"{v[i]:12.0f}" if i in v else f"{'-':>12s}" for i in impls)
    ratio = f"{v['cnnc'] / v['torch']:11.2f}" if 'cnnc' in v and v.get('torch') else f"{'-':>11s}"
    print(f'{model:10s} {batch:5d} {mode:6s} {cells} {ratio}')
for e in extra:
    print(e)
print("cnnc replays a CUDA graph per full-batch step; cnnc-nograph launches kernel by kernel (CNNC_CUDA_GRAPHS=0); cnnc-tf32 (with -tf32) runs the convolutions on the tensor cores")
print("torch: synchronises every step on the loss (as cnnc's TrainStep returns it) and copies the logits to the host; torch-async does not")
print("cnnc copies its batch in from page-locked host memory every call; torch-h2d does too, torch and torch-async keep it on the device")
EOF
echo
echo "train-lenet5: $rc_train, cudacheck: $rc_check, torch_bench: $rc_torch"
if [[ $rc_train -ne 0 || $rc_check -ne 0 || $rc_torch -ne 0 ]]; then
	exit 1
fi
