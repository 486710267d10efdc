"""USB mass-storage boot drives (RPI-RP2, MICROBIT): find one, copy an image onto it.

A drive is recognised by what is on it, not by its label: RPI-RP2 has
INFO_UF2.TXT with a `Board-ID: RPI-RP2` line, the micro:bit's DAPLink drive has
DETAILS.TXT. Candidates are the mount points of the system (Linux /proc/mounts,
macOS /Volumes, Windows drive letters) plus any directories named by the caller.
"""
import errno
import os
import re
import string
import sys
import time
from pathlib import Path

from .errors import FlashError


def mount_points():
    """Directories where removable drives may be mounted on this host."""
    found = []
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/mounts") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) > 2 and parts[2] in ("vfat", "msdos", "fuseblk", "exfat"):
                        found.append(parts[1].replace("\\040", " "))
        except OSError:
            pass
        user = os.environ.get("USER", "")
        for root in (f"/media/{user}", "/media", f"/run/media/{user}", "/mnt"):
            if os.path.isdir(root):
                found.extend(str(p) for p in Path(root).iterdir() if p.is_dir())
    elif sys.platform == "darwin":
        if os.path.isdir("/Volumes"):
            found.extend(str(p) for p in Path("/Volumes").iterdir())
    elif sys.platform == "win32":
        found.extend(f"{c}:\\" for c in string.ascii_uppercase if os.path.exists(f"{c}:\\"))
    return found


def is_drive(path, marker, board_id=None):
    """True if `path` holds `marker` (and, if board_id is given, a `Board-ID:` line
    matching it, as INFO_UF2.TXT has)."""
    f = Path(path) / marker
    try:
        if not f.is_file():
            return False
        if board_id is None:
            return True
        text = f.read_text(errors="replace")
    except OSError:
        return False
    m = re.search(r"^Board-ID:\s*(\S+)", text, re.M)
    return bool(m and m.group(1) == board_id)


def find(marker, board_id=None, roots=()):
    """The first drive among `roots` then the system's mount points, or None."""
    for p in list(roots) + mount_points():
        if is_drive(p, marker, board_id):
            return Path(p)
    return None


def wait(marker, board_id=None, roots=(), deadline_s=30.0, what="drive", hint="", poll_s=0.2):
    """Wait until a drive appears; FlashError after `deadline_s` seconds."""
    end = time.monotonic() + deadline_s
    while True:
        d = find(marker, board_id, roots)
        if d is not None:
            return d
        if time.monotonic() >= end:
            raise FlashError(f"no {what} drive (a mounted volume with {marker}) appeared within {deadline_s:g} s"
                             + (f": {hint}" if hint else ""))
        time.sleep(poll_s)


def copy(data, drive, name, progress=None, chunk=64 * 1024):
    """Write `data` (bytes) to drive/name, flushed to the device.

    A boot ROM may reboot (and the drive vanish) as soon as the last block lands,
    so an error after every byte was written and flushed is not a failure: the
    caller verifies the board instead. An error before that is."""
    dest = Path(drive) / name
    written = 0
    try:
        with open(dest, "wb") as f:
            while written < len(data):
                n = f.write(data[written:written + chunk])
                written += n
                if progress:
                    progress(written, len(data))
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        if written == len(data) and e.errno in (errno.EIO, errno.ENOENT, errno.ENODEV, errno.ENXIO):
            return dest
        raise FlashError(f"copying to {dest} failed after {written} of {len(data)} bytes: {e.strerror or e}; "
                         "the board was not flashed (unplug, re-enter the bootloader and try again)") from None
    return dest
