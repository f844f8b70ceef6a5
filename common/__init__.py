"""The course package: runtime, synthetic data, reference operators, models, metrics, trainer.

Importing `common` loads Paddle with every CPU core: Paddle reads OMP_NUM_THREADS once,
when it is first imported, and otherwise runs its CPU kernels on a single thread (about half
the speed on 2 cores; `make bench` measures it, interleaved and repeated, on your machine).
On an AMD CPU with AVX2 it also sets MKL_DEBUG_CPU_TYPE=5 unless already set, so Paddle's
bundled Intel MKL runs its AVX2 kernels, not its generic ones (one thread on a 2-core AMD
EPYC, per CPU second: a 2048^2 matmul at 70 GFLOP/s against 18; `runtime.cpu_info()`).
Paddle's import-time notices about that variable and about ccache are not for students,
so they are silenced here.
"""
import contextlib as _contextlib
import io as _io
import os as _os
import warnings as _warnings

import sys as _sys

# Paddle imported before us has already fixed its thread count (it writes
# OMP_NUM_THREADS=1 when the variable is unset); runtime.setup() mends that case.
PADDLE_LOADED_SINGLE_THREADED = ("paddle" in _sys.modules
                                 and _os.environ.get("OMP_NUM_THREADS", "1") == "1"
                                 and (_os.cpu_count() or 1) > 1)
_os.environ.setdefault("OMP_NUM_THREADS", str(_os.cpu_count() or 1))

# Paddle's bundled Intel MKL runs its slow generic kernels on AMD processors unless asked for
# AVX2 ones; set only on an AMD CPU with AVX2 and FMA, and never over the user's own value.
from common import runtime as _runtime  # noqa: E402  (imports no Paddle)

_mkl_type = _runtime.mkl_cpu_type_to_set(_runtime._cpuinfo_text(), _os.environ)
MKL_CPU_TYPE_SET = _mkl_type is not None
if MKL_CPU_TYPE_SET:
    _os.environ["MKL_DEBUG_CPU_TYPE"] = _mkl_type

with _warnings.catch_warnings(), _contextlib.redirect_stderr(_io.StringIO()):
    _warnings.filterwarnings("ignore", message="No ccache found")
    import paddle as _paddle  # noqa: F401

__version__ = "0.1.0"

# Paddle's BatchNorm warns on every training forward that it tracks global statistics
# (a note about an old API change, not about the student's code).
_warnings.filterwarnings("ignore", message="When training, we now always track global mean")
