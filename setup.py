"""Packaging hook (the rest is pyproject.toml): a wheel carries the device firmware,
the board profiles and the on-device suites in mpalloc_host/_data/, so `mpalloc
deploy`, `test`, `stats` and `boards` work outside a checkout (a checkout uses
firmware/, boards/ and tests/device/ in place: mpalloc_host.ROOT)."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

DATA = ("firmware", "boards", "tests/device")


class build_py_with_data(build_py):
    def run(self):
        super().run()
        root = Path(__file__).resolve().parent
        dest = Path(self.build_lib) / "mpalloc_host" / "_data"
        for rel in DATA:
            shutil.copytree(root / rel, dest / rel, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": build_py_with_data})
