"""The device code of every CUDA kernel, run on the CPU under an emulation of CUDA's
execution model (tests/cuda_emulation/), launched by the CuPy backend's own code with the
launch geometry the compiled launchers use, and compared with the reference on the
operator cases in all four dtypes; and bugs planted in CUDA-only lines make it fail."""

import shutil

import pytest
import torch

from tests.cuda_emulation import CSRC, EmulationError, Emulator, build, load_cupy_backend
from tests.ops_cases import (CORRELATION_CASES, DTYPES, WARP_SHAPES, check_channel_norm, check_correlation,
                              check_warp, check_warp_samples_where_float32_does, random_flow, smooth_flow)
from vid2vid.ops import extension

# a grid cap so low that grid-stride loops go round more than once
LOW_CAP = 2


def _backend(emulator: Emulator, monkeypatch, max_blocks=None):
    backend = load_cupy_backend(emulator)
    backend.MAX_BLOCKS = max_blocks
    # the stand-in runs CPU tensors: no CUDA device or stream to ask torch for
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda index=None: type("Stream", (), {"cuda_stream": 0}))
    return backend


@pytest.fixture(scope="module")
def emulator():
    return Emulator(build())


@pytest.fixture(params=[None, LOW_CAP], ids=["cap-default", "cap-2"])
def backend(request, emulator, monkeypatch):
    return _backend(emulator, monkeypatch, request.param)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
# 1426 pixels: 6 blocks of 256; 6 channels: a batch of 4 loaded together, then 2 one by one (the backward:
# batches of 2); 48 columns: the backward's tiles of 16 x 2 pixels all full
@pytest.mark.parametrize("shape", WARP_SHAPES + [(2, 3, 23, 31), (2, 6, 9, 11), (2, 5, 10, 48)], ids=str)
def test_warp_kernels_under_emulation(backend, dtype, shape):
    check_warp(backend, dtype, shape)


def test_the_warp_kernel_in_bfloat16_samples_at_float32_positions(emulator, monkeypatch):
    check_warp_samples_where_float32_does(_backend(emulator, monkeypatch))


def test_the_warp_backward_folds_shared_corners_into_fewer_atomics(emulator, monkeypatch):
    # what its speed rests on (docs/operators.md, "Warp"), counted: where neighbours share corners (a smooth
    # flow) 51 atomicAdds for a warp's 16 x 2 pixels, 1.6 per value, a little more where the flow's edges
    # part them; four where neighbours sample apart
    backend = _backend(emulator, monkeypatch)
    b, c, h, w = 2, 3, 16, 64
    x = torch.randn(b, c, h, w, dtype=torch.float64)
    per_value = {}
    for name, flow in (("random", random_flow(b, h, w, scale=3.0)), ("smooth", smooth_flow(b, h, w))):
        backend.warp_backward(torch.randn_like(x), x, flow.double())
        per_value[name] = emulator.atomic_adds / x.numel()
    assert per_value["random"] > 3.5 and 1.59 < per_value["smooth"] < 1.75, per_value


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CORRELATION_CASES, ids=str)
def test_correlation_kernels_under_emulation(emulator, monkeypatch, dtype, case):
    # one block per pixel, so no grid cap; the forward's shuffles run in warps of 32 lock-step lanes
    check_correlation(_backend(emulator, monkeypatch), dtype, case)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_correlation_kernels_at_flownetc_settings(emulator, monkeypatch, dtype):
    # 256 channels, 441 displacements in rows of 21, 40 columns: a full tile of 32 and a partial one
    check_correlation(_backend(emulator, monkeypatch), dtype, (1, 256, 4, 40, 20, 1, 20, 1, 2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_correlation_with_more_channels_than_a_chunk(emulator, monkeypatch, dtype):
    # 130 channels: 5 chunks of 32 floats, 3 of 64 bfloat16 (two a word), the last partly filled
    check_correlation(_backend(emulator, monkeypatch), dtype, (1, 130, 3, 4, 1, 1, 1, 1, 1))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_channel_norm_kernels_under_emulation(backend, dtype):
    check_channel_norm(backend, dtype)


@pytest.mark.parametrize("channels", [1, 2, 3, 5, 8])
def test_channel_norm_splits_any_channel_count_among_its_threads(backend, channels):
    # 1, 2, 4 or 8 threads per pixel, the last ones with fewer channels where they do not divide
    check_channel_norm(backend, torch.float64, shape=(3, channels, 5, 7))


def test_launches_use_the_compiled_launchers_geometry(emulator, monkeypatch):
    backend = _backend(emulator, monkeypatch, LOW_CAP)
    emulator.launches.clear()
    x, flow = torch.randn(2, 3, 23, 31), random_flow(2, 23, 31)
    backend.warp_forward(x, flow)
    backend.warp_backward(torch.randn_like(x), x, flow)
    backend.correlation_forward(torch.randn(2, 40, 5, 70), torch.randn(2, 40, 5, 70), 1, 1, 1, 1, 1)
    backend.correlation_backward(torch.randn(1, 9, 5, 6), torch.randn(1, 40, 5, 6), torch.randn(1, 40, 5, 6),
                                 1, 1, 1, 1, 1)
    backend.correlation_backward(torch.randn(1, 9, 5, 6, dtype=torch.float64),
                                 torch.randn(1, 40, 5, 6, dtype=torch.float64),
                                 torch.randn(1, 40, 5, 6, dtype=torch.float64), 1, 1, 1, 1, 1)
    assert emulator.launches == [
        ("vid2vid::warp_forward_kernel<float>", *extension.launch_config("warp", [2 * 23 * 31], LOW_CAP)),
        ("vid2vid::warp_backward_kernel<float>", *extension.launch_config("warp_backward", [2, 23, 31], LOW_CAP)),
        ("vid2vid::correlation_forward_kernel<float>",
         *extension.launch_config("correlation_forward", [2, 5, 70, 1, 1, 1])),
        ("vid2vid::correlation_backward_kernel<float>",
         *extension.launch_config("correlation_backward", [1, 5, 6, 40, 1, 1, 4])),
        ("vid2vid::correlation_backward_kernel<double>",
         *extension.launch_config("correlation_backward", [1, 5, 6, 40, 1, 1, 8])),
    ]
    assert extension.launch_config("warp", [2 * 23 * 31], LOW_CAP) == (2, 256)
    # the backward: a warp per tile of 16 x 2 pixels, 2 images x 12 tile rows x 2 tile columns, 8 warps a block
    assert extension.launch_config("warp_backward", [2, 23, 31]) == (6, 256)
    # channel norm: 256 / 8 = 32 pixels a block for 8 or more channels, 128 for 3
    assert extension.launch_config("channel_norm", [2 * 23 * 31, 256]) == (45, 256)
    assert extension.launch_config("channel_norm", [2 * 23 * 31, 3]) == (12, 256)
    # forward: 2 images x 5 rows x 3 tiles of 32 columns x 3 displacement rows x 1 group of 3
    assert extension.launch_config("correlation_forward", [2, 5, 70, 1, 1, 1]) == (2 * 5 * 3 * 3, 256)
    # backward: 5 rows x 1 tile x channel chunks of 32 (floats), 16 (doubles) or 64 (16-bit types, two a word)
    assert extension.launch_config("correlation_backward", [1, 5, 6, 40, 1, 1, 4]) == (5 * 2, 256)
    assert extension.launch_config("correlation_backward", [1, 5, 6, 40, 1, 1, 8]) == (5 * 3, 256)
    assert extension.launch_config("correlation_backward", [1, 5, 6, 40, 1, 1, 2]) == (5 * 1, 256)
    # FlowNetC at 448x1024, batch 8: 21 displacement rows of 21, tiles of 32 columns
    assert extension.launch_config("correlation_forward", [8, 56, 128, 20, 1, 2]) == (8 * 56 * 4 * 21, 256)


def test_correlation_tiles_fit_any_displacement_spacing(emulator, monkeypatch):
    # stride2 10: a group of 24 displacements would span 231 columns, more than a tile holds; 3 groups of 10
    backend = _backend(emulator, monkeypatch)
    check_correlation(backend, torch.float32, (1, 3, 4, 5, 100, 1, 100, 1, 10))
    assert extension.launch_config("correlation_forward", [1, 4, 5, 100, 1, 10]) == (1 * 4 * 1 * 21 * 3, 256)


def test_syncthreads_and_shared_memory(emulator):
    values = torch.randn(3, 64)
    sums = torch.zeros(3)
    emulator.launch("emulator_block_sum", 3, 64, [values.data_ptr(), sums.data_ptr()])
    torch.testing.assert_close(sums, values.sum(1))


def test_lanes_that_leave_before_a_shuffle_are_a_deadlock_not_a_hang(emulator):
    out = torch.zeros(32)
    with pytest.raises(EmulationError, match="deadlock in block 0: 16 threads wait"):
        emulator.launch("emulator_divergent_shuffle", 1, 32, [out.data_ptr()])


def test_a_launch_beyond_cuda_limits_is_an_error(emulator):
    with pytest.raises(EmulationError, match="invalid launch: 1 blocks of 2048 threads"):
        emulator.launch("emulator_block_sum", 1, 2048, [0, 0])


def test_shuffles_run_in_lock_step_in_full_warps(emulator):
    values, sums = torch.randn(2, 64), torch.zeros(4)
    emulator.launch("emulator_warp_sum", 2, 64, [values.data_ptr(), sums.data_ptr()])
    torch.testing.assert_close(sums, values.view(4, 32).sum(1))


def test_a_shuffle_in_a_partial_warp_is_an_error(emulator):
    # launched with 48 threads, the second warp has 16 lanes
    values, sums = torch.zeros(48), torch.zeros(2)
    with pytest.raises(EmulationError, match="full warps"):
        emulator.launch("emulator_warp_sum", 1, 48, [values.data_ptr(), sums.data_ptr()])


# Bugs planted in CUDA-only lines of the device code: (file under csrc, line as it is, line as planted,
# what to run). Each must make the comparison with the reference fail.
PLANTED = [
    # the forward reads its tiles before the other threads have written them
    ("correlation/correlation_kernel.cuh", "        __syncthreads();\n        if (lane < pixels) {",
     "        if (lane < pixels) {", "correlation"),
    # the backward loads the next tiles while other threads still read the last ones
    ("correlation/correlation_kernel.cuh", "          __syncthreads();  // the previous tiles have been read",
     "", "correlation"),
    # a tile word of two 16-bit channels reads its first for both
    ("correlation/correlation_kernel.cuh", "float get(int i) const { return to_acc(value[i]); }",
     "float get(int i) const { return to_acc(value[0]); }", "correlation in bfloat16"),
    # grad_b reads a's span from the wrong end
    ("correlation/correlation_kernel.cuh", "const int pa = lane + (group_count - 1 - k) * stride2;",
     "const int pa = lane + k * stride2;", "correlation"),
    ("warp/warp_kernel.cuh", "atomicAdd(gi + s.y1 * width + s.x1,", "atomicAdd(gi + s.y1 * width + s.x0,",
     "warp"),  # a wrong atomicAdd target
    # the backward folds a lane's left corners into its left neighbour's without checking the column
    ("warp/warp_kernel.cuh", "left_top == top && left_x1 == s.x0;", "left_top == top;", "warp"),
    # ... or the lane below's top corners into a lane's bottom ones
    ("warp/warp_kernel.cuh", "below_top == bottom && below_x0 == s.x0;", "below_top == bottom;", "warp"),
    # a lane takes the top-left of the lane below where its own left neighbour takes its bottom-left
    ("warp/warp_kernel.cuh", "f.below_left = f.below_right && !f.left_taken && below_left_free;",
     "f.below_left = f.below_right && below_left_free;", "warp"),
    # a top-row lane reads its own decision to take from below as the lane above's, and skips its top-right
    ("warp/warp_kernel.cuh", "f.above_right = lane >= 16 && above_right;", "f.above_right = above_right;",
     "warp"),
    # the lane below adds its top-right although the lane above adds it too
    ("warp/warp_kernel.cuh", "if (!f.above_right) atomicAdd(gi + s.y0 * width + s.x1, top_right);",
     "atomicAdd(gi + s.y0 * width + s.x1, top_right);", "warp"),
    # the last lane takes its right neighbour's corners, which the shuffle answers with its own
    ("warp/warp_kernel.cuh", "const bool take_right = lane < 31 && right_taken;",
     "const bool take_right = right_taken;", "warp"),
    # a lane skips the left corners that its left neighbour was to take, and the neighbour drops them
    ("warp/warp_kernel.cuh", "const acc_t top_right = gx1 - gx1 * s.wy + g_right * f.right00;",
     "const acc_t top_right = gx1 - gx1 * s.wy;", "warp"),
    # an idle lane (past the last pixel) scatters the last pixel's gradient again
    ("warp/warp_kernel.cuh", "  if (!f.active) return;\n", "", "warp"),
    ("channel_norm/channel_norm_kernel.cuh", "sum += v * v;", "sum += v;", "channel_norm"),  # a wrong sum
    # the channel norm adds up the partial sums before the other groups have written theirs
    ("channel_norm/channel_norm_kernel.cuh", "    partial[threadIdx.x] = sum;\n    __syncthreads();",
     "    partial[threadIdx.x] = sum;", "channel_norm"),
    # the forward's batch of channels stores each channel's sample into the first channel of the batch
    ("warp/warp_kernel.cuh", "out_b[(c + k) * plane] = from_acc<scalar_t>(interpolate(v[k], s));",
     "out_b[c * plane] = from_acc<scalar_t>(interpolate(v[k], s));", "warp"),
    # the backward's batch of channels reads every channel's output gradient from the first of the batch
    ("warp/warp_kernel.cuh", "g[k] = to_acc(grad_output[image + (c + k) * plane + p]);",
     "g[k] = to_acc(grad_output[image + c * plane + p]);", "warp"),
    # a 32-bit split that forgets the image: every image takes the first one's flow
    ("common/kernel_common.cuh", "return {static_cast<int>(b), static_cast<long long>(",
     "return {0, static_cast<long long>(", "warp"),
    # a grid-stride step that forgets the grid: pixels done twice once the loop goes round
    ("warp/warp_kernel.cuh", "first += static_cast<long long>(blockDim.x) * gridDim.x) {",
     "first += static_cast<long long>(blockDim.x)) {", "warp"),
]


@pytest.mark.parametrize("planted", PLANTED, ids=lambda p: f"{p[0]}:{p[1].strip()[:30]}")
def test_a_planted_bug_in_device_code_fails_the_comparison(planted, tmp_path, monkeypatch):
    header, original, bug, op = planted
    csrc = tmp_path / "csrc"
    shutil.copytree(CSRC, csrc)
    source = (csrc / header).read_text()
    assert source.count(original) == 1, f"the line to plant in is no longer in {header}"
    (csrc / header).write_text(source.replace(original, bug))
    backend = _backend(Emulator(build(csrc)), monkeypatch, LOW_CAP)
    # 40 columns: two full tiles of 16 and a partial one; 23 rows: the last tile row half outside
    check = {"warp": lambda: check_warp(backend, torch.float64, (2, 6, 23, 40)),
             # 40 channels: every lane of the warps holds a share of the sums
             "correlation": lambda: check_correlation(backend, torch.float64, (2, 40, 5, 6, 1, 1, 1, 1, 1)),
             "correlation in bfloat16": lambda: check_correlation(backend, torch.bfloat16,
                                                                  (2, 70, 5, 6, 1, 1, 1, 1, 1)),
             "channel_norm": lambda: check_channel_norm(backend, torch.float64)}[op]
    with pytest.raises(AssertionError):
        check()
