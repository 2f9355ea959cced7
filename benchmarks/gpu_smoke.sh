#!/usr/bin/env bash
# GPU smoke test: every family trains 20 steps on one GPU in fp16 and in bf16 and prints images/s (steps 11-20, from
# the run's log.csv) and peak GPU memory; then 2 ranks train with NCCL (on 2 GPUs, or on the one GPU if that is all
# there is: NCCL may refuse two ranks on one device, which is reported, not hidden). Skips cleanly without CUDA.
#
#   bash benchmarks/gpu_smoke.sh                 # 256x256 synthetic data, all families, fp16 + bf16
#   SIZE=512 AMPS=bf16 FAMILIES="spade" bash benchmarks/gpu_smoke.sh
#   PYTHON=.venv/bin/python KEEP=runs/gpu_smoke bash benchmarks/gpu_smoke.sh
#
# Environment: PYTHON (default python), SIZE (256), STEPS (20), AMPS ("fp16 bf16"), FAMILIES (all four),
# KEEP (a folder to keep the runs in; default a temporary folder, removed at the end).
set -euo pipefail

PYTHON=${PYTHON:-python}
SIZE=${SIZE:-256}
STEPS=${STEPS:-20}
AMPS=${AMPS:-"fp16 bf16"}
FAMILIES=${FAMILIES:-"pix2pix pix2pixhd spade msg_unet"}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_smoke: no CUDA device visible to $PYTHON; skipped"
    exit 0
fi
N_GPU=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")
"$PYTHON" -c "import torch; print('gpu_smoke:', torch.cuda.get_device_name(0), '| torch', torch.__version__, '| GPUs', torch.cuda.device_count())"

if [[ -n "${KEEP:-}" ]]; then
    WORK=$KEEP
    mkdir -p "$WORK"
else
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
fi

"$PYTHON" -m pixtrans data synth --out "$WORK/data" --n 8 --n-test 2 --size "$SIZE" > /dev/null

# per-family settings: the synthetic configs at SIZE (pix2pix: unet_256 at 256 px and up)
family_sets() {
    local downs=8
    (( SIZE < 256 )) && downs=$(( SIZE >= 128 ? 7 : 6 ))
    case "$1" in
        pix2pix) echo "--set model.num_downs=$downs" ;;
        *) echo "" ;;
    esac
}

COMMON=(--set "data.root=$WORK/data" --set "data.load_size=$SIZE" --set "data.crop_size=$SIZE"
        --set train.progress=false --set train.sample_every=0 --set train.save_every=0 --set train.log_every=10)

# one training in this process: prints "family amp images/s peak_MiB"
train_one() {
    local fam=$1 amp=$2 out=$3
    # shellcheck disable=SC2046
    "$PYTHON" - "$fam" "$amp" "$out" "$STEPS" "${COMMON[@]}" $(family_sets "$fam") <<'EOF'
import csv, sys
import torch
from pixtrans.config import load_config
from pixtrans.train.trainer import Trainer

fam, amp, out, steps, *rest = sys.argv[1:]
sets = [rest[i + 1] for i in range(0, len(rest), 2)]
cfg = load_config(f"configs/{fam}_synth.yaml", [*sets, f"train.amp={amp}", f"train.steps={steps}", "train.device=cuda"])
torch.cuda.reset_peak_memory_stats()
Trainer(cfg, out).fit()
rows = list(csv.DictReader(open(f"{out}/log.csv")))
ips = float(rows[-1]["images_per_s"])
losses = {k: float(v) for k, v in rows[-1].items() if k.startswith(("G_", "D_", "KLD"))}
assert all(v == v and abs(v) != float("inf") for v in losses.values()), losses
print(f"{fam:10s} {amp:5s} {ips:9.2f} img/s {torch.cuda.max_memory_allocated() / 2**20:9.0f} MiB peak")
EOF
}

echo
echo "family     amp    images/s            peak memory"
FAIL=0
for fam in $FAMILIES; do
    for amp in $AMPS; do
        if ! train_one "$fam" "$amp" "$WORK/run_${fam}_${amp}"; then
            echo "$fam $amp: FAILED"
            FAIL=1
        fi
    done
done

# CPU-only finding re-checked on the GPU: instance-norm backward with a channels_last incoming gradient
"$PYTHON" - <<'EOF'
import torch
x = torch.randn(1, 16, 32, 32, device="cuda", dtype=torch.float64, requires_grad=True)
g = torch.randn(1, 16, 32, 32, device="cuda", dtype=torch.float64)
ref = torch.autograd.grad(torch.nn.functional.instance_norm(x), x, g)[0]
cl = torch.autograd.grad(torch.nn.functional.instance_norm(x), x, g.contiguous(memory_format=torch.channels_last))[0]
print(f"instance-norm backward, channels_last gradient on CUDA: max error {float((ref - cl).abs().max()):.2e}")
EOF

echo
NPROC_DEVICE="cuda"
if (( N_GPU < 2 )); then
    NPROC_DEVICE="cuda:0"
    echo "ddp: one GPU, so both NCCL ranks use cuda:0 (NCCL may refuse that: 'Duplicate GPU detected')"
fi
# shellcheck disable=SC2046
if "$PYTHON" -m torch.distributed.run --standalone --nproc-per-node 2 -m pixtrans train configs/pix2pix_synth.yaml \
    "${COMMON[@]}" $(family_sets pix2pix) --set train.amp=bf16 --set "train.steps=$STEPS" \
    --set "train.device=$NPROC_DEVICE" --out "$WORK/run_ddp" > "$WORK/ddp.log" 2>&1; then
    tail -n 1 "$WORK/run_ddp/log.csv" | awk -F, '{print "ddp: 2 ranks, NCCL, pix2pix bf16: OK, images/s (both ranks) " $3}'
else
    echo "ddp: 2 ranks with NCCL FAILED; last lines of the log:"
    tail -n 15 "$WORK/ddp.log"
    (( N_GPU >= 2 )) && FAIL=1
fi
exit $FAIL
