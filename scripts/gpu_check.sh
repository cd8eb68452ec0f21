#!/usr/bin/env bash
# For whoever first has a GPU: builds vid2vid._C with its CUDA kernels, runs the
# CUDA tests, the operator benchmark, 50 iterations of vid2vid with bf16 at
# 512x512 on generated label videos, and checks scripts/plan_gpu.py's memory
# plans against real iterations of the Cityscapes configs, then prints one summary.
#
#   bash scripts/gpu_check.sh [OUTPUT]        # default OUTPUT: runs/gpu_check
#
# Needs torch with CUDA, the CUDA toolkit (nvcc) and this package's requirements
# already installed (pip install torch ninja numpy scipy av pillow tqdm pyyaml
# kornia pytest, plus cupy-cuda13x or -cuda12x for the CuPy backend's tests).
# Each step's log is in OUTPUT; a failing step is reported, and the next runs.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/gpu_check}
mkdir -p "$OUT"
summary=()

step() {  # step NAME LOG COMMAND...: runs COMMAND, output to LOG; records time and outcome
  local name=$1 log=$2 start=$SECONDS
  shift 2
  if "$@" >"$log" 2>&1; then
    summary+=("$(printf '%-10s ok      %4ds  %s' "$name" $((SECONDS - start)) "$log")")
  else
    summary+=("$(printf '%-10s FAILED  %4ds  %s (last lines below)' "$name" $((SECONDS - start)) "$log")")
    tail -n 15 "$log"
  fi
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/gpu.txt" 2>&1
step build "$OUT/build.log" env VID2VID_REQUIRE_CUDA=1 python -m pip install -v --no-deps --no-build-isolation -e .
step backends "$OUT/backends.log" python -c "
import torch, vid2vid.ops.compiled as c
from vid2vid.ops.backends import format_backend_info
assert c.cuda_enabled, 'vid2vid._C was built without CUDA'
assert torch.cuda.is_available(), 'torch sees no GPU'
print(format_backend_info())"
toolchain() {  # what a report of compiled ops that crash on errors needs (docs/troubleshooting.md)
  echo "== g++ on PATH: $(command -v g++) (CXX=${CXX:-unset})"; g++ --version | head -n 1
  echo "== /usr/bin/g++"; /usr/bin/g++ --version 2>&1 | head -n 1
  python - <<'EOF'
import torch
import vid2vid._C  # the raw build, past the error check, to read what it reports of itself
config = torch.__config__.show()
settings = dict(item.strip().split("=", 1) for item in config.split("Build settings:")[-1].split(", ") if "=" in item)
print("== torch", torch.__version__, "built with", config.splitlines()[1].strip("- "), "| CXX_COMPILER",
      settings.get("CXX_COMPILER"), "| _GLIBCXX_USE_CXX11_ABI", torch._C._GLIBCXX_USE_CXX11_ABI)
print("== torch's CXX_FLAGS:", settings.get("CXX_FLAGS"))
print("== vid2vid._C was built by", torch.ops.vid2vid_C.build_info())
from vid2vid.ops import extension
print("== error check:", extension.checked_errors(extension.extension_file()))
EOF
  echo "== ldd vid2vid/_C*.so"; ldd vid2vid/_C*.so
}
step toolchain "$OUT/toolchain.log" toolchain
step tests "$OUT/tests.log" python -m pytest -q -rs tests/test_ops_cuda.py tests/test_ops_api.py tests/test_ops_numerics.py
step bench "$OUT/bench.txt" python scripts/bench_ops.py --device cuda
step vid2vid "$OUT/vid2vid.log" python - "$OUT" <<'EOF'
import sys, time
from pathlib import Path

import torch

sys.path.insert(0, "scripts")
import train_vid2vid
from vid2vid.data.demo import build_video_demo_dataset

out = Path(sys.argv[1])
data = build_video_demo_dataset(out / "vid2vid_data", train=4, test=1, frames=16, size=256)
torch.cuda.reset_peak_memory_stats()
start = time.perf_counter()
status = train_vid2vid.main([
    "--output", str(out / "vid2vid_run"), "--max-iters", "50", "--quiet", f"data.root={data}",
    "data.preprocess=scale_width", "data.load_size=512", "train.amp=bf16", "train.device=cuda",
    "train.checkpoint_every=50", "model.ngf=64", "model.n_downsample_G=3", "model.n_blocks=9", "model.num_D=2",
])
elapsed = time.perf_counter() - start
print(f"vid2vid: 50 iterations (with data loading and the final render) in {elapsed:.1f} s, "
      f"peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB allocated")
sys.exit(status)
EOF

plan() {  # the plan against a real iteration; no VGG weights here, so no VGG loss in either
  for config in configs/pix2pixhd_cityscapes_1024x512.yaml configs/vid2vid_cityscapes_512x256.yaml \
                configs/vid2vid_cityscapes_1024x512.yaml configs/vid2vid_cityscapes_2048x1024.yaml; do
    python scripts/plan_gpu.py --config "$config" --measure model.lambda_vgg=0 | grep -E "^configs|^measured" || return 1
  done
}
step plan "$OUT/plan.log" plan

echo
echo "GPU: $(cat "$OUT/gpu.txt")"
printf '%s\n' "${summary[@]}"
grep -h -E "passed|failed" "$OUT/tests.log" | tail -n 1
grep -h "^vid2vid:" "$OUT/vid2vid.log"
grep -h "^measured" "$OUT/plan.log"
