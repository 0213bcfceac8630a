"""Builds the C fast paths (the gateway's, and the embedded log's batch framing) and
puts the console's files into the package; everything else about the package is in
pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

WEB = Path(__file__).resolve().parent / "web"


class build_py_with_console(build_py):  # noqa: N801 (setuptools' command naming)
    """The console lives in `web/` at the repository's top (it is a client of the API,
    not gateway code); an installed gateway serves it from `gateway/console/web/`."""

    def run(self) -> None:
        super().run()
        if WEB.is_dir():
            target = Path(self.build_lib) / "gateway" / "console" / "web"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(WEB, target)


setup(
    cmdclass={"build_py": build_py_with_console},
    ext_modules=[
        Extension(
            "gateway.records._speedups",
            sources=["gateway/records/_speedups.c"],
            extra_compile_args=["-Wall", "-Wextra", "-Wno-unused-parameter"],
            # Without a compiler the package still installs: the reference paths serve.
            optional=True,
        ),
        Extension(
            "storage.embedded._framing",
            sources=["storage/embedded/_framing.c"],
            libraries=["z"],
            extra_compile_args=["-Wall", "-Wextra", "-Wno-unused-parameter"],
            # Without it codec.frame_batch, the reference, frames every batch.
            optional=True,
        ),
    ],
)
