"""mpalloc host tools: deploy to boards, run on-board suites, statistics, maps, benchmarks.

Layers point one way: transport <- board <- runner <- cli / pytest_plugin.
"""
from pathlib import Path

__version__ = "0.1.0"

_PKG = Path(__file__).resolve().parent
ROOT = _PKG.parents[1]  # a checkout: firmware/, boards/, tests/device/ beside host_tools/
if not (ROOT / "firmware" / "mpalloc").is_dir() and (_PKG / "_data" / "firmware").is_dir():
    ROOT = _PKG / "_data"  # installed from a wheel: the same tree inside the package (setup.py)
FIRMWARE_DIR = ROOT / "firmware"
BOARDS_DIR = ROOT / "boards"
DEVICE_TESTS_DIR = ROOT / "tests" / "device"
NODE_DIR = ROOT / "host_tools" / "node"  # npm manifest, lock and node_modules (wasm32, emu)
