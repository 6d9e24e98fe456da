"""Access lines: the lines of one event-loop turn leave in one write, at the start of the next turn;
without a running loop a line is written at once (shared/logging.py)."""
from __future__ import annotations

import asyncio
import io
import sys

from shared.logging import _LinesPerLoopTurn


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_lines_of_one_turn_leave_in_one_write_at_the_next_turn(monkeypatch):
    stream = CountingStream()
    monkeypatch.setattr(sys, "stderr", stream)
    lines = _LinesPerLoopTurn()
    for n in range(3):
        lines.add(f'{{"n":{n}}}')
    assert stream.getvalue() == ""  # still this turn
    await asyncio.sleep(0)
    assert stream.getvalue() == '{"n":0}\n{"n":1}\n{"n":2}\n'
    assert stream.writes == 1
    lines.add('{"n":3}')
    await asyncio.sleep(0)
    assert stream.getvalue().endswith('{"n":2}\n{"n":3}\n') and stream.writes == 2


def test_without_a_running_loop_a_line_is_written_at_once(monkeypatch):
    stream = CountingStream()
    monkeypatch.setattr(sys, "stderr", stream)
    lines = _LinesPerLoopTurn()
    lines.add('{"alone":true}')
    assert stream.getvalue() == '{"alone":true}\n'
    lines.write()  # nothing pending: nothing written
    assert stream.writes == 1


def test_lines_are_joined_into_pieces_of_at_most_the_limit_ending_at_a_line_end():
    from shared.logging import whole_lines_within

    lines = ["a" * 10, "b" * 10, "c" * 10, "é" * 5, "d" * 40, "e"]
    pieces = whole_lines_within(lines, 25)
    assert "".join(pieces) == "\n".join(lines) + "\n"
    assert pieces == ["a" * 10 + "\n" + "b" * 10 + "\n", "c" * 10 + "\n" + "é" * 5 + "\n", "d" * 40 + "\n", "e\n"]
    assert all(len(p.encode()) <= 25 for p in pieces if p != "d" * 40 + "\n")  # a longer line goes alone
    assert whole_lines_within([], 25) == []
