"""mpalloc host tools: deploy to boards, run on-board suites, statistics, maps, benchmarks.

Layers point one way: transport <- board <- runner <- cli / pytest_plugin.
"""
from pathlib import Path

__version__ = "0.1.0"

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = ROOT / "firmware"
BOARDS_DIR = ROOT / "boards"
DEVICE_TESTS_DIR = ROOT / "tests" / "device"
NODE_DIR = ROOT / "host_tools" / "node"  # npm manifest, lock and node_modules (wasm32, emu)
