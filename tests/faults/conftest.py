"""Fixtures of the fault suite: one two-region deployment (tests/faults/harness.py) shared by the
scenarios while each leaves it healthy, rebuilt from scratch after a scenario that failed or left
something broken, so no scenario's leftovers decide another's outcome. Each failure report carries
the tail of every process's log; the session ends with the measured convergence times."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import pytest_asyncio

from tests.faults.harness import Deployment

# Convergence times measured in this session: (scenario, seconds, bound) in the order they ran.
MEASURED: list[tuple[str, float, float]] = []


class Shared:
    def __init__(self) -> None:
        self.current: Deployment | None = None
        self.builds = 0

    async def get(self) -> Deployment:
        if self.current is None:
            folder = Path(tempfile.mkdtemp(prefix="meridian-faults-"))
            deployment = Deployment(folder)
            try:
                await deployment.start()
            except BaseException:
                await deployment.stop()
                raise
            self.current = deployment
            self.builds += 1
        return self.current

    async def discard(self) -> None:
        if self.current is not None:
            deployment, self.current = self.current, None
            await deployment.stop()
            if os.environ.get("MERIDIAN_FAULTS_KEEP"):
                print(f"fault suite: kept {deployment.workdir} (logs/, configs, data)")
            else:
                shutil.rmtree(deployment.workdir, ignore_errors=True)


@pytest_asyncio.fixture(scope="session")
async def shared_deployment():
    shared = Shared()
    yield shared
    await shared.discard()


@pytest_asyncio.fixture
async def deployment(request, shared_deployment):
    """The running deployment, healthy at the start of the test: every process answering and no
    fault left in place."""
    current = shared_deployment.current
    if current is not None and not await current.healthy():
        await shared_deployment.discard()
    deployment = await shared_deployment.get()
    request.node.fault_deployment = deployment
    yield deployment
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed or not await deployment.healthy():
        await shared_deployment.discard()


@pytest.fixture
def converged(request):
    """Record a scenario's measured convergence time for the session summary (and print it)."""

    def record(seconds: float, bound: float, label: str | None = None) -> None:
        name = label or request.node.name
        MEASURED.append((name, seconds, bound))
        print(f"CONVERGENCE {name}: {seconds:.1f} s (bound {bound:.0f} s)")

    return record


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    deployment = getattr(item, "fault_deployment", None)
    if report.failed and deployment is not None and report.when in ("call", "setup"):
        for name, tail in deployment.log_tails(30).items():
            report.sections.append((f"log tail: {name}", tail))
    return report


def pytest_terminal_summary(terminalreporter):
    if not MEASURED:
        return
    terminalreporter.section("fault suite: measured convergence")
    for name, seconds, bound in MEASURED:
        terminalreporter.write_line(f"{name:<70} {seconds:7.1f} s   (bound {bound:.0f} s)")
