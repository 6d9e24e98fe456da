"""`meridian up` stopped by SIGTERM or Ctrl-C while it starts (services/cli.py, _cancelled_by_signal):
the signal cancels the start at an await, so its cleanup runs whole, and a second signal cannot cut
that cleanup short. Before, the signal raised KeyboardInterrupt wherever the loop happened to be, the
cleanup broke on the half-done state it left, and gateway workers outlived the embedded PostgreSQL.

Each case runs in a process of its own: signal handlers belong to a process, not to a test."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A stand-in for `up`'s start: prints what it reaches; a cleanup that takes a while, as stopping the
# gateway workers and the collector does.
SCRIPT = """
import asyncio, sys
from services.cli import _cancelled_by_signal, _until_signal

def say(word):
    print(word, flush=True)

async def starting():
    try:
        say("starting")
        await asyncio.sleep(60)
    finally:
        say("cleaning up")
        await asyncio.sleep(2)
        say("cleaned up")

async def swallows_the_cancellation():
    try:
        say("starting")
        await asyncio.sleep(60)
    except asyncio.CancelledError:  # as asyncio.wait_for can on Python 3.11
        say("cancellation swallowed")
    await _until_signal()
    say("stopped serving")

async def serving():
    try:
        say("serving")
        await _until_signal()  # as the registry does once it listens
    finally:
        say("cleaning up")
        await asyncio.sleep(2)
        say("cleaned up")

async def fails():
    say("starting")
    raise SystemExit("meridian: a refused option")  # as _fail does

async def main(case):
    cases = {"starting": starting, "swallows": swallows_the_cancellation, "fails": fails, "serving": serving}
    await _cancelled_by_signal(cases[case]())
    say("returned")

asyncio.run(main(sys.argv[1]))
"""


def start(case: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, case], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def output(process: subprocess.Popen) -> IO[str]:
    assert process.stdout is not None
    return process.stdout


def read_until(process: subprocess.Popen, word: str) -> list[str]:
    """Lines up to and including `word` (the process is killed by the test's timeout otherwise)."""
    lines = []
    for line in output(process):
        lines.append(line.strip())
        if line.strip() == word:
            return lines
    raise AssertionError(f"the process ended before {word!r}: {lines}")


@pytest.mark.parametrize("first, second", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGINT),
                                           (signal.SIGTERM, signal.SIGINT)])
def test_a_signal_while_starting_runs_the_cleanup_whole_despite_a_second_one(first, second):
    process = start("starting")
    try:
        read_until(process, "starting")
        os.kill(process.pid, first)
        read_until(process, "cleaning up")
        os.kill(process.pid, second)  # an impatient second Ctrl-C, or a service manager's repeated stop
        rest = output(process).read().split("\n")
        assert process.wait(10) == 0, rest
        assert [line for line in rest if line] == [
            "meridian: stopping; a third Ctrl-C stops at once, without waiting for the stop to finish",
            "cleaned up", "returned"], rest
    finally:
        process.kill()


@pytest.mark.parametrize("case, ready", [("starting", "starting"), ("serving", "serving")])
def test_a_third_signal_cuts_a_stop_short(case, ready):
    process = start(case)
    try:
        read_until(process, ready)
        os.kill(process.pid, signal.SIGINT)
        read_until(process, "cleaning up")
        os.kill(process.pid, signal.SIGINT)
        read_until(process, "meridian: stopping; a third Ctrl-C stops at once, without waiting for the stop to finish")
        os.kill(process.pid, signal.SIGINT)
        rest = output(process).read().split()
        assert process.wait(10) == 0, rest
        assert rest == ["returned"], rest  # the cleanup did not get to its end
    finally:
        process.kill()


def test_a_refusal_while_starting_exits_with_its_message_alone():
    process = start("fails")
    try:
        text = output(process).read()
        assert process.wait(10) == 1, text
        assert text == "starting\nmeridian: a refused option\n", text  # no "Task exception was never retrieved"
    finally:
        process.kill()


def test_a_start_that_swallows_the_cancellation_still_stops_once_it_serves():
    process = start("swallows")
    try:
        read_until(process, "starting")
        os.kill(process.pid, signal.SIGTERM)
        rest = output(process).read().split()
        assert process.wait(10) == 0, rest
        assert rest == ["cancellation", "swallowed", "stopped", "serving", "returned"], rest
    finally:
        process.kill()
