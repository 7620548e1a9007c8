#!/usr/bin/env bash
# The GPU checks of issues 2 and 4, for a session lent a GPU machine (README, "On a GPU").
#
# Here, once:   make gpu-wheels      (the wheels the GPU image lacks, into .whl/, git-ignored)
# There, as the device tool's command, with carry [".whl"]:
#   bash benchmarks/gpu_session.sh STEP [STEP ...]
# Steps, each logged to $OUT/STEP.log with its wall time and exit status:
#   info     nvidia-smi, torch / numba-cuda versions, whether numba sees the GPU
#   tests    (tests-cuda, then tests-all) the CUDA-relevant tests on the real GPU (FAKEBALLOONS_REAL_CUDA=1), then the suite
#            less the browser tests
#   render   fakeballoons bench render --device cuda --batch 256 (issue 2: >= 10,000 Perlin scenes/s)
#   train    fakeballoons bench train fcn_resnet50 512x512 batch 32 --amp (issue 4: >= 300 images/s)
#   augment  fakeballoons bench augment --device cuda: a rendered batch's augmentation (transfer-gpu's
#            320x320, batch 32) picture by picture through torchvision against whole-batch
#   paper    starts the paper preset on 10,000 Perlin pairs in the background (setsid; it outlives
#            this command, not the machine) into /tmp/paper; then call `paper-status` every few
#            minutes in later commands while the machine is still warm
#   paper-status   metrics.jsonl and the log tail of that run; copies them to $OUT
#   transfer the transfer-gpu experiment, one seed, on Stanford Background (folder:$SBD_ROOT, default
#            shdata/stanford-background: link the folder holding it as shdata, git-ignored, and carry
#            ["shdata/stanford-background", ".whl"]), into /tmp/tgpu, then its report to $OUT
#   paper-fg the same run in the foreground into /tmp/paper, stopped at DEADLINE seconds after this
#            script started (default 600), then its metrics.jsonl and log copied to $OUT: for a
#            lease too short to keep a machine warm between calls
# STEP_TIMEOUT=S stops any one step after S seconds (default: no limit).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1 && [ ! -e /tmp/site/.done ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && touch /tmp/site/.done || { echo "wheel install failed"; exit 1; }
fi
export PYTHONPATH="$PWD/src:/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
FB="python3 -m fakeballoons"

step() {
  local name=$1; shift
  local start=$SECONDS
  echo "== $name: $*"
  if [ -n "${STEP_TIMEOUT:-}" ]; then timeout "$STEP_TIMEOUT" "$@" >"$OUT/$name.log" 2>&1
  else "$@" >"$OUT/$name.log" 2>&1; fi
  local rc=$?
  tail -n 30 "$OUT/$name.log"
  echo "exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/$name.log"
  return $rc
}

for s in "$@"; do
  case $s in
    info) step info bash -c 'nvidia-smi; python3 -c "import torch, numba, numba_cuda, torchvision; print(torch.__version__, torchvision.__version__, numba.__version__); from numba import cuda; print(\"numba sees\", cuda.is_available(), cuda.get_current_device().name)"' ;;
    tests|tests-cuda) step tests-cuda env FAKEBALLOONS_REAL_CUDA=1 python3 -m pytest -q -p no:cacheprovider -n 8 \
             tests/test_gpu.py tests/test_render.py tests/test_pack.py tests/test_noise.py tests/test_datasets.py ;;&
    tests|tests-all) step tests-all env FAKEBALLOONS_REAL_CUDA=1 python3 -m pytest -q -p no:cacheprovider -n 8 \
             --ignore tests/test_viewer_browser.py ;;
    tests-cuda) ;;
    render) step render $FB bench render --device cuda --batch 256 --scenes 2560 --workers 8 --json ;;
    augment) step augment $FB bench augment --device cuda --size 320 --batch 32 --json ;;
    train) step train $FB bench train --model fcn_resnet50 --size 512 --batch 32 --device cuda --amp --json ;;
    paper) rm -rf /tmp/paper
           setsid nohup $FB train --data synthetic:perlin --out /tmp/paper --preset paper --device cuda \
             --quiet >/tmp/paper.log 2>&1 < /dev/null &
           echo "paper run started (pid $!); follow with the step paper-status" ;;
    paper-fg) rm -rf /tmp/paper; left=$(( ${DEADLINE:-600} - SECONDS ))
              if [ "$left" -lt 30 ]; then echo "paper-fg: only $left s left before DEADLINE; skipped"; continue; fi
              STEP_TIMEOUT=$left step paper $FB train --data synthetic:perlin --out /tmp/paper --preset paper --device cuda
              cp /tmp/paper/metrics.jsonl "$OUT/paper-metrics.jsonl" 2>/dev/null
              tail -n 3 /tmp/paper/metrics.jsonl 2>/dev/null ;;
    transfer) step transfer $FB experiment --preset transfer-gpu --data "folder:${SBD_ROOT:-shdata/stanford-background}" \
                --classes 8 --device cuda --seeds 1 --out /tmp/tgpu --quiet
              $FB report /tmp/tgpu >/dev/null 2>&1
              cp /tmp/tgpu/report.md "$OUT/transfer-report.md" 2>/dev/null
              (cd /tmp/tgpu && tail -qn 1 */metrics.jsonl) > "$OUT/transfer-last-metrics.jsonl" 2>/dev/null ;;
    paper-status) cp /tmp/paper/metrics.jsonl "$OUT/paper-metrics.jsonl" 2>/dev/null
                  cp /tmp/paper.log "$OUT/paper.log" 2>/dev/null
                  tail -n 5 /tmp/paper.log; cat /tmp/paper/metrics.jsonl 2>/dev/null | tail -n 3 ;;
    *) echo "unknown step $s (info tests tests-cuda tests-all render train paper paper-status paper-fg transfer)"; exit 2 ;;
  esac
done
