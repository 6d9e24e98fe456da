import shutil
import tempfile

import pytest


@pytest.fixture
def short_runroot():
    # podman refuses a runroot longer than 50 characters; pytest's tmp_path is longer.
    path = tempfile.mkdtemp(prefix="mpod", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)
