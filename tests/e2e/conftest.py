import random
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def short_runroot():
    # podman refuses a runroot longer than 50 characters; pytest's tmp_path is longer.
    path = tempfile.mkdtemp(prefix="mpod", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def data_root():
    """A folder for `meridian up --data` outside pytest's base temp folder: each pytest session makes
    that folder 0700 again when it starts, which would lock out the `pgserver` user that the embedded
    PostgreSQL runs as (as root) while another session runs."""
    path = tempfile.mkdtemp(prefix="mdata", dir="/tmp")
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def port_pair() -> int:
    """A port P with P and P+1 free, for `meridian up --regions us,eu` (gateways on P and P+1). Chosen
    below the kernel's ephemeral range: ports handed out by bind(0) (the embedded NATS, blobstores)
    are often consecutive, so P+1 next to a bind(0) port would soon be taken."""
    from shared.embedded import port_open

    for _ in range(200):
        port = random.randrange(20000, 30000)
        if not port_open("127.0.0.1", port) and not port_open("127.0.0.1", port + 1):
            return port
    raise RuntimeError("no two consecutive free ports in 20000-30000")
