"""Build of the fastconv extension.

Every C file in csrc/ is compiled here, not by setuptools' default rule, so that each ISA's
kernels get their own flags: files ending in _avx512.c get AVX-512, files ending in _avx2.c get
AVX2+FMA, the rest the baseline of the target. The right kernels are chosen at run time
(csrc/runtime/cpu.c), so the wheel runs on any x86-64 CPU; nothing is tuned to the build machine.
"""
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
CSRC = Path("csrc")
BASE_FLAGS = ["-O3", "-std=gnu11", "-fno-strict-aliasing", "-Wall", "-Wno-unknown-pragmas"]
ISA_FLAGS = {
    "_avx512.c": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-mavx2"],
    "_avx2.c": ["-mavx2", "-mfma"],
}
# Extra flags for sanitizer or debug builds: FASTCONV_CFLAGS="-fsanitize=address -g".
EXTRA_FLAGS = os.environ.get("FASTCONV_CFLAGS", "").split()


def isa_flags(path):
    for suffix, flags in ISA_FLAGS.items():
        if path.endswith(suffix):
            return flags
    return []


class BuildExt(build_ext):
    def _openmp_flags(self):
        """-fopenmp if the compiler can build and link an OpenMP program, else none."""
        if os.environ.get("FASTCONV_NO_OPENMP"):
            return []
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "omp_probe.c")
            with open(src, "w") as f:
                f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
            try:
                objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
                self.compiler.link_executable(objs, "probe", output_dir=tmp, extra_postargs=["-fopenmp"])
                return ["-fopenmp"]
            except Exception:
                warnings.warn("OpenMP not available: fastconv builds single-threaded", stacklevel=1)
                return []

    def build_extension(self, ext):
        omp = self._openmp_flags()
        c_sources = [s for s in ext.sources if s.startswith(str(CSRC))]
        ext.sources = [s for s in ext.sources if s not in c_sources]
        objects = []
        for src in c_sources:
            objects += self.compiler.compile(
                [src],
                output_dir=self.build_temp,
                include_dirs=ext.include_dirs,
                extra_postargs=BASE_FLAGS + omp + isa_flags(src) + EXTRA_FLAGS,
                depends=ext.depends,
            )
        ext.extra_objects = objects + list(ext.extra_objects or [])
        # the kernels' sources count for the up-to-date check of the link too (else an edit to a
        # .c file alone recompiles its object and leaves the old library in place)
        ext.depends = list(ext.depends or []) + [s for s in c_sources if s not in ext.depends]
        ext.extra_compile_args = list(ext.extra_compile_args or []) + omp + EXTRA_FLAGS
        ext.extra_link_args = list(ext.extra_link_args or []) + omp + EXTRA_FLAGS
        super().build_extension(ext)


class BuildPy(build_py):
    """Ship the layer tables of benchmarks/ (*.csv) inside the package as fastconv/bench/tables/,
    for `fastconv bench` in an installed package; benchmarks/ keeps the only copy in the source."""

    def run(self):
        super().run()
        dst = Path(self.build_lib) / "fastconv" / "bench" / "tables"
        dst.mkdir(parents=True, exist_ok=True)
        for table in sorted((HERE / "benchmarks").glob("*.csv")):
            shutil.copyfile(table, dst / table.name)


c_sources = sorted(str(p) for p in CSRC.rglob("*.c"))
depends = sorted(str(p) for p in CSRC.rglob("*.h")) + sorted(str(p) for p in CSRC.rglob("*.inc"))
ext = Extension(
    "fastconv._core",
    sources=["fastconv/_core.pyx"] + c_sources,
    include_dirs=[str(CSRC / "include"), str(CSRC)],
    depends=depends,
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
)

if sys.platform != "linux":
    warnings.warn("fastconv is developed and tested on Linux with gcc or clang", stacklevel=1)

setup(
    ext_modules=cythonize([ext], language_level=3, compiler_directives={"boundscheck": False, "wraparound": False}),
    cmdclass={"build_ext": BuildExt, "build_py": BuildPy},
)
