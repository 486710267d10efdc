#!/usr/bin/env bash
# Set up what mpalloc's host tools need, in layers, without asking anything:
#
#   host_tools/setup.sh demo     .venv (pinned Python requirements, mpalloc editable, the
#                                MicroPython unix port): enough for `make demo` on vboard:rp2040
#   host_tools/setup.sh test     demo + Debian packages for the other targets (qemu-system-arm,
#                                the micro:bit firmware, Node.js/npm, ser2net) + node_modules
#                                (webassembly port, rp2040js) + the frozen layer (make test builds
#                                the frozen micro:bit firmware); the default
#   host_tools/setup.sh LAYER --print   what LAYER would install, installing nothing
#   host_tools/setup.sh frozen   demo + what the frozen micro:bit build needs: the ARM toolchain,
#                                yotta, srecord, cmake, ninja, dpkg-dev, and a deb-src apt source
#                                (apt-get source of the micro:bit firmware)
#
# Each layer says what it is about to install before installing it. Debian packages
# are installed with apt-get when running as root, else listed and the script fails;
# an apt source is only added as root, and named when it is.
# Each step is skipped when already done (stamps hold the hash of their inputs).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

layer=${1:-test}
case "$layer" in
  demo|test|frozen) ;;
  *) echo "mpalloc setup: unknown layer '$layer' (demo, test or frozen)" >&2; exit 2 ;;
esac

# --- Debian packages -------------------------------------------------------------
# command-or-file  package
need_test=(
  "/usr/bin/qemu-system-arm qemu-system-arm"
  "/usr/share/firmware-microbit-micropython/firmware.hex firmware-microbit-micropython"
  "/usr/bin/node nodejs"
  "/usr/bin/npm npm"
  "/usr/sbin/ser2net ser2net"
)
# qemu:microbit-frozen: the micro:bit firmware rebuilt from Debian's source package
# with mpalloc frozen in flash (host_tools/mpalloc_host/flash/microbit_frozen.py)
need_frozen=(
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
need=()
[ "$layer" = test ] && need+=("${need_test[@]}")
[ "$layer" = test ] || [ "$layer" = frozen ] && need+=("${need_frozen[@]}")
if [ "${2:-}" = --print ]; then
  pk=(); for pair in "${need[@]}"; do pk+=("${pair#* }"); done
  echo "layer $layer"
  echo "debian: ${pk[*]}"
  [ "$layer" = demo ] || echo "apt-source: /etc/apt/sources.list.d/mpalloc-debsrc.sources (deb-src bookworm main, unless one exists)"
  echo "python: .venv from requirements.txt"
  [ "$layer" != test ] || echo "npm: host_tools/node (package.json + package-lock.json)"
  exit 0
fi
missing=()
for pair in "${need[@]}"; do
  f=${pair% *}; p=${pair#* }
  [ -e "$f" ] || missing+=("$p")
done
# apt-get source (microbit_frozen.py) needs a deb-src entry for bookworm main
debsrc=/etc/apt/sources.list.d/mpalloc-debsrc.sources
add_src=
if [ "$layer" != demo ] && [ ! -e "$debsrc" ] \
   && ! grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  add_src=1
fi
if [ ${#missing[@]} -gt 0 ] || [ -n "$add_src" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    if [ -n "$add_src" ]; then
      say "layer $layer: adding the apt source $debsrc (deb-src http://deb.debian.org/debian bookworm main, for apt-get source firmware-microbit-micropython)"
      printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$debsrc"
    fi
    [ ${#missing[@]} -eq 0 ] || say "layer $layer: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    [ ${#missing[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    [ ${#missing[@]} -eq 0 ] || echo "mpalloc setup ($layer): missing Debian packages: ${missing[*]}" >&2
    [ ${#missing[@]} -eq 0 ] || echo "install them with:  sudo apt-get install ${missing[*]}" >&2
    [ -z "$add_src" ] || echo "and add a deb-src source for bookworm main (e.g. $debsrc) for the frozen micro:bit build" >&2
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
  say "creating .venv from requirements.txt (pinned Python packages, mpalloc editable)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c 'import mpremote, serial, rich, pytest, hypothesis, mpalloc_host' \
    || { echo "mpalloc setup: .venv is incomplete (pip install failed above)" >&2; exit 1; }
  echo "$want" > .venv/.stamp
fi

[ "$layer" = test ] || { say "ready ($layer layer)"; exit 0; }

# --- Node.js runtime for the 32-bit MicroPython (wasm32:<board>) -------------------
# host_tools/node/: package.json + lock (the repository root's package.json is mip's)
want=$(cat host_tools/node/package.json host_tools/node/package-lock.json | sha256sum | cut -c1-16)
if [ "$(cat host_tools/node/node_modules/.stamp 2>/dev/null)" != "$want" ]; then
  say "installing the MicroPython webassembly port and rp2040js (npm ci in host_tools/node)"
  (cd host_tools/node && npm ci --silent --no-audit --no-fund)
  echo "$want" > host_tools/node/node_modules/.stamp
fi
say "ready ($layer layer)"
