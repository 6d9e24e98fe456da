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
