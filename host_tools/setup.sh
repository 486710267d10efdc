#!/usr/bin/env bash
# Set up everything mpalloc's host tools need, without asking anything:
#   - Debian packages (qemu-system-arm, the micro:bit MicroPython firmware, Node.js, ser2net),
#     installed with apt-get when running as root, else listed and the script fails;
#   - .venv with the pinned Python requirements and mpalloc installed editable;
#   - node_modules with the pinned MicroPython webassembly port.
# Each step is skipped when already done (stamps hold the hash of their inputs).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

# --- Debian packages -------------------------------------------------------------
# command-or-file  package
need=(
  "/usr/bin/qemu-system-arm qemu-system-arm"
  "/usr/share/firmware-microbit-micropython/firmware.hex firmware-microbit-micropython"
  "/usr/bin/node nodejs"
  "/usr/bin/npm npm"
  "/usr/sbin/ser2net ser2net"
  # qemu:microbit-frozen: the micro:bit firmware rebuilt from Debian's source package
  # with mpalloc frozen in flash (host_tools/mpalloc_host/flash/microbit_frozen.py)
  "/usr/bin/arm-none-eabi-gcc gcc-arm-none-eabi"
  "/usr/lib/arm-none-eabi/newlib/libc.a libnewlib-arm-none-eabi"
  "/usr/lib/arm-none-eabi/newlib/libstdc++.a libstdc++-arm-none-eabi-newlib"
  "/usr/bin/yotta yotta"
  "/usr/bin/srec_cat srecord"
  "/usr/bin/cmake cmake"
  "/usr/bin/ninja ninja-build"
  "/usr/bin/dpkg-source dpkg-dev"
  "/usr/bin/gcc gcc"
)
# apt-get source (microbit_frozen.py) needs a deb-src entry for bookworm main
debsrc=/etc/apt/sources.list.d/mpalloc-debsrc.sources
if [ "$(id -u)" = 0 ] && [ ! -e "$debsrc" ] && command -v apt-get >/dev/null \
   && ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  say "adding a deb-src entry ($debsrc)"
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$debsrc"
  missing_src=1
fi
missing=()
for pair in "${need[@]}"; do
  f=${pair% *}; p=${pair#* }
  [ -e "$f" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ -n "${missing_src:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    [ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "mpalloc setup: missing Debian packages: ${missing[*]}" >&2
    echo "install them with:  sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# --- Python virtual environment ---------------------------------------------------
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "mpalloc setup: Python 3.11 or newer is needed ($PY is $("$PY" --version 2>&1))" >&2
  exit 1
fi
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.stamp 2>/dev/null)" != "$want" ]; then
  say "creating .venv from requirements.txt"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c 'import mpremote, serial, rich, pytest, hypothesis, mpalloc_host' \
    || { echo "mpalloc setup: .venv is incomplete (pip install failed above)" >&2; exit 1; }
  echo "$want" > .venv/.stamp
fi

# --- Node.js runtime for the 32-bit MicroPython (wasm32:<board>) -------------------
# host_tools/node/: package.json + lock (the repository root's package.json is mip's)
want=$(cat host_tools/node/package.json host_tools/node/package-lock.json | sha256sum | cut -c1-16)
if [ "$(cat host_tools/node/node_modules/.stamp 2>/dev/null)" != "$want" ]; then
  say "installing the MicroPython webassembly port and rp2040js (npm ci in host_tools/node)"
  (cd host_tools/node && npm ci --silent --no-audit --no-fund)
  echo "$want" > host_tools/node/node_modules/.stamp
fi
say "ready"
