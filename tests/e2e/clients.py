"""Running real client commands (skopeo, podman) from the end-to-end tests."""
from __future__ import annotations

import asyncio
import os


async def attempt(*command: str, env: dict | None = None, timeout: float = 180) -> tuple[int, str]:
    """(exit code, stdout and stderr together)."""
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                                                   env={**os.environ, **(env or {})})
    out, _ = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None  # communicate() waited for the exit
    return process.returncode, out.decode(errors="replace")


async def ok(*command: str, env: dict | None = None) -> str:
    code, out = await attempt(*command, env=env)
    assert code == 0, f"{' '.join(command)} failed ({code}):\n{out}"
    return out
