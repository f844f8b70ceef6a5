"""Paddle's bundled MKL on AMD processors: when `import common` sets MKL_DEBUG_CPU_TYPE,
and that the AVX2 kernels it selects give the same outputs as the generic ones."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from common import runtime

AMD = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2
"""
INTEL = AMD.replace("AuthenticAMD", "GenuineIntel").replace("AMD EPYC 7B13", "Intel Xeon")
AMD_NO_AVX2 = AMD.replace(" avx2", "")
AMD_NO_FMA = AMD.replace(" fma", "")


@pytest.mark.parametrize("cpuinfo, environ, expected", [
    (AMD, {}, "5"),
    (AMD, {"OMP_NUM_THREADS": "2"}, "5"),
    (AMD, {"MKL_DEBUG_CPU_TYPE": "4"}, None),      # the user's value wins
    (AMD, {"MKL_DEBUG_CPU_TYPE": ""}, None),       # an empty value is the user's opt-out
    (AMD_NO_AVX2, {}, None),                       # AVX2 kernels would crash (SIGILL)
    (AMD_NO_FMA, {}, None),
    (INTEL, {}, None),                             # MKL picks the right kernels itself
    ("", {}, None),                                # no /proc/cpuinfo (macOS, Windows)
])
def test_mkl_cpu_type_decision(cpuinfo, environ, expected):
    assert runtime.mkl_cpu_type_to_set(cpuinfo, environ) == expected


# A tiny conv net's inference output, written to argv[1]; prints cpu_info() as JSON.
_FORWARD = r"""
import json, sys
import numpy as np
import common, paddle
paddle.seed(0)
net = paddle.nn.Sequential(
    paddle.nn.Conv2D(3, 32, 3, padding=1), paddle.nn.BatchNorm2D(32), paddle.nn.ReLU(),
    paddle.nn.Conv2D(32, 32, 3, padding=2, dilation=2), paddle.nn.ReLU(),
    paddle.nn.Conv2D(32, 7, 1))
net.eval()
x = paddle.to_tensor(np.random.default_rng(0).standard_normal((2, 3, 48, 48)).astype("float32"))
with paddle.no_grad():
    np.save(sys.argv[1], (net(x) @ paddle.ones([48, 48]) / 48).numpy())
print(json.dumps({"info": common.runtime.cpu_info(), "set": common.runtime.MKL_CPU_TYPE_SET}))
"""


def _forward(tmp_path, name, mkl_type):
    env = {k: v for k, v in os.environ.items() if k != "MKL_DEBUG_CPU_TYPE"}
    if mkl_type is not None:
        env["MKL_DEBUG_CPU_TYPE"] = mkl_type
    out = tmp_path / f"{name}.npy"
    proc = subprocess.run([sys.executable, "-c", _FORWARD, str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.load(out), json.loads(proc.stdout.strip().splitlines()[-1])


def test_mkl_kernels_give_equal_outputs(tmp_path):
    # "" keeps MKL's own choice (generic kernels on AMD); None lets `import common` decide.
    generic, generic_meta = _forward(tmp_path, "generic", "")
    chosen, chosen_meta = _forward(tmp_path, "chosen", None)
    # Read /proc/cpuinfo here rather than trusting the decision function under test.
    text = runtime._cpuinfo_text()
    amd_avx2 = "AuthenticAMD" in text and {"avx2", "fma"} <= set(text.split())
    assert chosen_meta["set"] == amd_avx2
    assert not generic_meta["set"]
    if amd_avx2:      # this machine is an AMD with AVX2: two kernel families compared
        assert "generic (no AVX) kernels" in generic_meta["info"], generic_meta["info"]
        assert "AVX2 kernels" in chosen_meta["info"], chosen_meta["info"]
    rel = np.abs(chosen - generic).max() / np.abs(generic).max()
    assert rel <= 1e-5, f"MKL kernels disagree: {rel:.2e} relative"
