"""The public operators: autograd, custom-op registration, torch.compile,
nn.Module wrappers, backend selection and every bad input."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import vid2vid
import vid2vid.ops as ops
from vid2vid.ops import backends, extension, reference
from vid2vid.ops.kernel_sources import KERNELS, kernel_source_dir
from tests.ops_cases import CORRELATION_CASES, random_flow

CPU_BACKENDS = ["compiled", "reference"]


@pytest.fixture(params=CPU_BACKENDS)
def cpu_backend(request, monkeypatch):
    """Runs the test once per CPU backend, selected through the environment variable."""
    monkeypatch.setenv(backends.ENV_VAR, f"cpu={request.param}")
    return request.param


def _double(*shape):
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


# ---------------------------------------------------------------------- autograd


def test_gradcheck_warp(cpu_backend):
    x = _double(2, 3, 5, 6)
    flow = random_flow(2, 5, 6, torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(ops.warp, (x, flow))


@pytest.mark.parametrize("case", CORRELATION_CASES)
def test_gradcheck_correlation(cpu_backend, case):
    b, c, h, w, *params = case
    a, bb = _double(b, c, h, w), _double(b, c, h, w)
    # the reference's loop over displacements makes each of the full check's ~2000 evaluations slow: there it
    # checks random projections of the Jacobian (fast mode), which a wrong gradient fails just the same
    assert torch.autograd.gradcheck(lambda x, y: ops.correlation(x, y, *params), (a, bb),
                                    fast_mode=cpu_backend == "reference")


def test_gradcheck_channel_norm(cpu_backend):
    assert torch.autograd.gradcheck(ops.channel_norm, (_double(2, 4, 3, 5),))


def test_gradient_for_one_input_only(cpu_backend):
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    ops.warp(x, torch.zeros(1, 2, 4, 4)).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


# --------------------------------------------------------- custom op registration


def test_opcheck(cpu_backend):
    x, flow = torch.randn(2, 3, 5, 6, requires_grad=True), random_flow(2, 5, 6).requires_grad_()
    torch.library.opcheck(torch.ops.vid2vid.warp.default, (x, flow))
    a, b = torch.randn(1, 4, 7, 8, requires_grad=True), torch.randn(1, 4, 7, 8, requires_grad=True)
    torch.library.opcheck(torch.ops.vid2vid.correlation.default, (a, b, 3, 1, 3, 1, 1))
    torch.library.opcheck(torch.ops.vid2vid.correlation.default, (a, b, 2, 3, 2, 2, 1))
    torch.library.opcheck(torch.ops.vid2vid.channel_norm.default, (a,))
    grad = torch.randn(2, 3, 5, 6)
    torch.library.opcheck(torch.ops.vid2vid.warp_backward.default, (grad, x.detach(), flow.detach()))


def test_torch_compile_fullgraph(cpu_backend):
    def flownet_like(a, b, flow):
        corr = ops.correlation(a, b, 2, 1, 2, 1, 1)
        warped = ops.warp(b, flow)
        return corr.sum() + ops.channel_norm(a - warped).sum()

    a, b = torch.randn(1, 3, 8, 8, requires_grad=True), torch.randn(1, 3, 8, 8, requires_grad=True)
    flow = random_flow(1, 8, 8).requires_grad_()
    compiled = torch.compile(flownet_like, backend="aot_eager", fullgraph=True)
    eager_out = flownet_like(a, b, flow)
    eager_grads = torch.autograd.grad(eager_out, (a, b, flow))
    out = compiled(a, b, flow)
    grads = torch.autograd.grad(out, (a, b, flow))
    torch.testing.assert_close(out, eager_out)
    for g, e in zip(grads, eager_grads):
        torch.testing.assert_close(g, e)


def test_backends_agree_through_public_api(monkeypatch):
    x, flow = torch.randn(2, 3, 9, 8), random_flow(2, 9, 8)
    a, b = torch.randn(2, 6, 9, 8), torch.randn(2, 6, 9, 8)
    results = {}
    for name in CPU_BACKENDS:
        monkeypatch.setenv(backends.ENV_VAR, name)
        results[name] = (ops.warp(x, flow), ops.correlation(a, b, 3, 1, 3, 1, 1), ops.channel_norm(a))
    for got, want in zip(results["compiled"], results["reference"]):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------ modules


def test_modules_take_flownet2_arguments():
    corr = ops.Correlation(pad_size=20, kernel_size=1, max_displacement=20, stride1=1, stride2=2, corr_multiply=1)
    a = torch.randn(1, 8, 16, 16)
    assert corr(a, a).shape == (1, 441, 16, 16)
    assert "max_displacement=20" in repr(corr)
    x, flow = torch.randn(1, 3, 4, 5), torch.zeros(1, 2, 4, 5)
    torch.testing.assert_close(ops.Resample2d(kernel_size=1)(x, flow), x)
    torch.testing.assert_close(ops.ChannelNorm(norm_deg=2)(a), torch.linalg.vector_norm(a, dim=1, keepdim=True))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: ops.Resample2d(kernel_size=3), "kernel_size=1"),
        (lambda: ops.Resample2d(bilinear=False), "bilinear=True"),
        (lambda: ops.Correlation(corr_multiply=2), "corr_multiply=1"),
        (lambda: ops.ChannelNorm(norm_deg=1), "norm_deg=2"),
    ],
)
def test_modules_refuse_unsupported_settings(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# ---------------------------------------------------------------------- bad input

X = torch.randn(2, 3, 4, 5)
FLOW = torch.zeros(2, 2, 4, 5)

BAD_WARP = [
    ((torch.randn(3, 4, 5), FLOW), ValueError, "input must be 4-D"),
    ((X, torch.zeros(2, 3, 4, 5)), ValueError, "exactly 2 channels"),
    ((X, torch.zeros(1, 2, 4, 5)), ValueError, "does not match input shape"),
    ((X, torch.zeros(2, 2, 4, 6)), ValueError, "does not match input shape"),
    ((X.long(), FLOW), TypeError, "input must be float32"),
    ((X, FLOW.int()), TypeError, "flow must be float32"),
    ((X, FLOW.double()), TypeError, "same dtype"),
    ((X, FLOW.to("meta")), ValueError, "input is on cpu but flow is on meta"),
    ((torch.randn(0, 3, 4, 5), torch.zeros(0, 2, 4, 5)), ValueError, "input is empty"),
    ((X.numpy(), FLOW), TypeError, "input must be a torch.Tensor"),
]


@pytest.mark.parametrize("args, error, message", BAD_WARP)
def test_warp_bad_input(cpu_backend, args, error, message):
    with pytest.raises(error, match=message):
        ops.warp(*args)


A = torch.randn(1, 4, 8, 8)
BAD_CORRELATION = [
    ((A, torch.randn(1, 4, 8, 9)), {}, ValueError, "does not match input2 shape"),
    ((A, torch.randn(1, 4, 8)), {}, ValueError, "input2 must be 4-D"),
    ((A.half(), A), {}, TypeError, "same dtype"),
    ((A.int(), A.int()), {}, TypeError, "input1 must be float32"),
    ((A, A), {"kernel_size": 2}, ValueError, "kernel_size must be odd"),
    ((A, A), {"stride1": 0}, ValueError, "stride1 must be >= 1"),
    ((A, A), {"pad_size": -1}, ValueError, "pad_size must be >= 0"),
    ((A, A), {"max_displacement": 2.5}, TypeError, "max_displacement must be an int"),
    ((A, A), {"pad_size": 0, "max_displacement": 4}, ValueError, "output would be empty"),
    ((torch.randn(1, 0, 8, 8), torch.randn(1, 0, 8, 8)), {}, ValueError, "input1 is empty"),
]


@pytest.mark.parametrize("args, kwargs, error, message", BAD_CORRELATION)
def test_correlation_bad_input(cpu_backend, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        ops.correlation(*args, **kwargs)


@pytest.mark.parametrize(
    "arg, error, message",
    [
        (torch.randn(4, 5), ValueError, "input must be 4-D"),
        (torch.ones(1, 2, 3, 4, dtype=torch.int64), TypeError, "input must be float32"),
        (torch.randn(1, 2, 0, 4), ValueError, "input is empty"),
    ],
)
def test_channel_norm_bad_input(cpu_backend, arg, error, message):
    with pytest.raises(error, match=message):
        ops.channel_norm(arg)


def run_isolated(code: str, **env: str) -> str:
    """Runs code in a fresh interpreter and returns its output; an interpreter that dies (as one whose
    compiled ops cannot raise does) fails the test with the signal, instead of ending the session."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env={**os.environ, **env}, cwd=Path(__file__).resolve().parent.parent)
    if result.returncode < 0:
        pytest.fail(f"the interpreter was killed by {signal.Signals(-result.returncode).name}: an error raised in "
                    f"vid2vid._C did not reach Python (docs/troubleshooting.md#compiled-ops-crash-python)\n"
                    f"{result.stdout}{result.stderr}")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_raw_compiled_ops_check_their_arguments():
    # Called directly, past the Python checks (and past the one-time check), the C++ binding still
    # refuses bad shapes.
    out = run_isolated("""
        import pytest, torch, vid2vid._C
        with pytest.raises(RuntimeError, match="flow must have 2 channels"):
            torch.ops.vid2vid_C.warp_forward(torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 5))
        a = torch.zeros(1, 2, 6, 6)
        with pytest.raises(RuntimeError, match="kernel_size must be odd"):
            torch.ops.vid2vid_C.correlation_forward(a, a, 1, 2, 1, 1, 1)
        print("raised")
    """)
    assert out.strip() == "raised"


# -------------------------------------------------- errors inside vid2vid._C reach Python


@pytest.fixture
def build_copy(tmp_path, monkeypatch):
    """A copy of the built vid2vid._C, so that its check is fresh and its cache is the test's own."""
    monkeypatch.delenv(extension.PLANT_CRASH, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    built = extension.extension_file()
    copy = tmp_path / built.name
    shutil.copy2(built, copy)
    return copy


def test_the_error_check_runs_once_per_build_and_is_kept_beside_it(build_copy, monkeypatch):
    check = extension.checked_errors(build_copy)
    assert check.ok and check.final and check.detail == "raised RuntimeError"
    assert check.built_by.startswith(("GCC ", "clang ")), check.built_by
    assert (build_copy.parent / (build_copy.name + ".error-check.json")).is_file()

    def no_subprocess(path):
        raise AssertionError("the cached answer was not used")

    monkeypatch.setattr(extension, "run_error_check", no_subprocess)
    assert extension.checked_errors(build_copy) == check
    os.utime(build_copy, ns=(0, 10**9))  # a rebuilt file is checked again
    with pytest.raises(AssertionError, match="cached answer"):
        extension.checked_errors(build_copy)


def test_the_error_check_is_kept_in_the_user_cache_where_the_build_folder_is_read_only(build_copy, monkeypatch):
    real_write = Path.write_text

    def read_only_beside_the_build(self, *args, **kwargs):
        if self.parent == build_copy.parent:
            raise PermissionError(f"read-only: {self}")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", read_only_beside_the_build)
    assert extension.checked_errors(build_copy).ok
    assert len(list((build_copy.parent / "cache" / "vid2vid" / "extension-checks").glob("*.json"))) == 1
    monkeypatch.setattr(extension, "run_error_check", lambda path: pytest.fail("not read from the user cache"))
    assert extension.checked_errors(build_copy).ok


def test_a_planted_crash_is_found_named_and_never_cached(build_copy, monkeypatch):
    monkeypatch.setenv(extension.PLANT_CRASH, "1")
    check = extension.checked_errors(build_copy)
    assert not check.ok and check.final
    assert "killed the process with SIGSEGV" in check.detail
    assert not (build_copy.parent / (build_copy.name + ".error-check.json")).exists()
    message = extension.failure_message(check)
    assert f"built by {check.built_by}" in message
    assert "CXX=/usr/bin/g++ CC=/usr/bin/gcc pip install --no-build-isolation -e ." in message
    assert message.endswith("(see docs/troubleshooting.md#compiled-ops-crash-python)")


def test_a_check_that_cannot_finish_decides_nothing(build_copy, monkeypatch):
    monkeypatch.setattr(extension, "CHECK_TIMEOUT_S", 0.01)
    check = extension.checked_errors(build_copy)
    assert not check.ok and not check.final and "did not finish" in check.detail
    assert not (build_copy.parent / (build_copy.name + ".error-check.json")).exists()


# Uses the operators three times in a fresh interpreter; prints the one warning they gave and the backend.
FALLBACK_PROBE = """
    import warnings, torch
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import vid2vid.ops as ops
        x, f = torch.randn(1, 3, 4, 4), torch.zeros(1, 2, 4, 4)
        for _ in range(3):
            assert torch.equal(ops.warp(x, f), x)
            ops.channel_norm(x)
    messages = [str(w.message) for w in caught if "vid2vid" in str(w.message)]
    assert len(messages) == 1, messages
    print(messages[0])
    print(ops.backend_info()["warp"]["cpu"].name)
"""


def test_a_build_whose_errors_would_crash_is_not_used_and_the_ops_fall_back_with_one_warning():
    out = run_isolated(FALLBACK_PROBE, **{extension.PLANT_CRASH: "1"})
    warning, backend = out.strip().splitlines()
    assert backend == "reference"
    assert "cpu tensors use the reference backend" in warning and "SIGSEGV" in warning
    assert "built by GCC" in warning or "built by clang" in warning
    assert "CXX=/usr/bin/g++" in warning and "compiled-ops-crash-python" in warning


# ------------------------------------------------------------------ the build


def test_extension_has_cuda_where_the_build_required_it():
    # CI's second venv builds with VID2VID_REQUIRE_CUDA=1 and runs these tests against that build.
    if os.environ.get("VID2VID_REQUIRE_CUDA") != "1":
        pytest.skip("VID2VID_REQUIRE_CUDA is not set")
    from vid2vid.ops import compiled

    assert compiled.cuda_enabled


def test_an_installed_package_carries_the_kernel_sources_for_cupy():
    package = Path(vid2vid.__file__).resolve().parent
    if (package.parent / "csrc").is_dir():
        pytest.skip("vid2vid is imported from a source checkout, not an installed package")
    assert kernel_source_dir() == package / "_kernels"
    for header in list(KERNELS) + ["common/kernel_common.cuh"]:
        assert (package / "_kernels" / header).is_file(), header


# -------------------------------------------------------------- backend selection


def test_backend_info_names_a_backend_and_a_reason_per_operator_and_device():
    info = ops.backend_info()
    assert set(info) == {"warp", "correlation", "channel_norm"}
    for devices in info.values():
        assert set(devices) == {"cpu", "cuda"}
        assert devices["cpu"].name == "compiled"
        assert "vid2vid._C" in devices["cpu"].reason
    assert "warp" in ops.format_backend_info()


def test_env_var_selects_the_reference(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "reference")
    assert ops.backend_info()["warp"]["cpu"].name == "reference"
    assert backends.backend_for("cpu") is reference


def test_explicit_missing_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "cpu=cupy")
    with pytest.raises(backends.BackendUnavailableError, match="'cupy' backend on cpu tensors.*CUDA tensors only"):
        ops.warp(X, FLOW)
    assert "not available" in ops.backend_info()["warp"]["cpu"]


def test_bad_env_value_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "fastest")
    with pytest.raises(ValueError, match="expected one of compiled, cupy, reference, auto"):
        ops.warp(X, FLOW)


def _run_without_extension(code: str, env_value: str = "") -> subprocess.CompletedProcess:
    """Runs code in a fresh interpreter where vid2vid._C cannot be imported."""
    prelude = "import sys; sys.modules['vid2vid._C'] = None\n"
    env = {**os.environ, backends.ENV_VAR: env_value}
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_missing_extension_degrades_to_reference_with_one_warning():
    result = _run_without_extension(FALLBACK_PROBE)
    assert result.returncode == 0, result.stderr
    warning, backend = result.stdout.strip().splitlines()
    assert backend == "reference"
    assert "reference" in warning and "pip install --no-build-isolation -e ." in warning


def test_missing_extension_requested_explicitly_is_an_error():
    result = _run_without_extension(
        "import torch, vid2vid.ops as ops\nops.warp(torch.randn(1, 3, 4, 4), torch.zeros(1, 2, 4, 4))\n",
        env_value="compiled",
    )
    assert result.returncode != 0
    assert "asks for the 'compiled' backend on cpu tensors" in result.stderr
    assert "vid2vid._C is not built" in result.stderr


def test_warp_samples_in_float32_under_autocast():
    """Mixed precision hands warp a float32 frame and a bfloat16 flow; it samples both in float32."""
    x, flow = torch.rand(1, 3, 8, 8), (torch.rand(1, 2, 8, 8) * 4 - 2).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ops.warp(x, flow)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ops.warp(x, flow.float()))
    with pytest.raises(TypeError, match="give both the same dtype"):
        ops.warp(x, flow)  # outside autocast a mismatch is the caller's mistake


def test_an_extension_built_against_another_torch_says_to_rebuild():
    stale = ImportError("vid2vid/_C.so: undefined symbol: _ZN3c1017RegisterOperatorsD1Ev")
    message = backends.extension_problem(stale)
    assert "built against another torch" in message and "pip install --no-build-isolation -e ." in message
    assert message.endswith("(see docs/troubleshooting.md#undefined-symbol-after-upgrading-torch)")
    assert "not built" in backends.extension_problem(ImportError("No module named 'vid2vid._C'"))
