"""Files with personal data and secrets are readable by their owner only.

The data directory (`CAMPAIGN_DATA_DIR`: Temporal's SQLite, the generated API key, the
simulated carrier's record, the embedded PostgreSQL) is 0700 and every file in it 0600.
`campaign-engine up` also sets its umask to 077, so what its children create is private too.
Run as root, the embedded PostgreSQL runs as a user of its own that must traverse the data
directory to reach its `postgres/` folder (and the package opens every parent to it): the data
directory is then 0711, traversable but not listable, and its files stay 0600.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) 0700; an existing `path` is made 0700 too."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty and 0600 if it is missing; an existing one is made 0600."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE)
    os.close(fd)
    os.chmod(path, PRIVATE_FILE)
    return path


def make_tree_private(root: Path) -> None:
    """Every directory under `root` 0700 and every regular file 0600 (sockets are left alone)."""
    private_dir(root)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            _chmod(Path(folder) / name, PRIVATE_DIR, stat.S_ISDIR)
        for name in files:
            _chmod(Path(folder) / name, PRIVATE_FILE, stat.S_ISREG)


def _chmod(path: Path, mode: int, kind) -> None:
    try:
        info = path.lstat()
        if kind(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
            os.chmod(path, mode)
    except OSError:
        pass  # gone meanwhile, or not ours


def reclose_data_dir(root: Path) -> None:
    """The data directory back to owner only after the embedded PostgreSQL opened it (0711 as
    root, where its own user must still traverse it; else 0700)."""
    try:
        os.chmod(root, 0o711 if os.geteuid() == 0 and (root / "postgres").exists() else PRIVATE_DIR)
    except OSError:
        pass
