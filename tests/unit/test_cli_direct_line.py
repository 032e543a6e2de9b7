"""run_node.py peer's ``direct`` line: printed when a relayed connection moves to a punched
path, and not when it closes while still relayed."""

from __future__ import annotations

import asyncio
import json

import pytest

from hyperswarm_hugin.cli.peer import report_direct
from hyperswarm_hugin.connection import ConnectionClosed

KEY = bytes(range(32))


class RelayedConnection:
    """What report_direct reads of a Connection; ``moved`` settles its wait_direct."""

    def __init__(self) -> None:
        self.remote_public_key = KEY
        self.remote_address: tuple[str, int] | None = ("10.0.0.9", 4000)  # the relay
        self.holepunched = False
        self.moved: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def wait_direct(self) -> None:
        if not await self.moved:
            raise ConnectionClosed("the connection closed while relayed")


def test_a_direct_line_names_the_new_path(capsys: pytest.CaptureFixture[str]) -> None:
    async def run() -> None:
        conn = RelayedConnection()
        reporting = asyncio.ensure_future(report_direct(conn))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert capsys.readouterr().out == ""  # nothing while relayed
        conn.remote_address, conn.holepunched = ("198.51.100.7", 20001), True
        conn.moved.set_result(True)
        await reporting

    asyncio.run(run())
    line = json.loads(capsys.readouterr().out)
    assert line.pop("afterMs") >= 0
    assert line == {"event": "direct", "remotePublicKey": KEY.hex(), "holepunched": True,
                    "remoteAddress": "198.51.100.7:20001"}


def test_no_line_when_it_closes_while_relayed(capsys: pytest.CaptureFixture[str]) -> None:
    async def run() -> None:
        conn = RelayedConnection()
        conn.moved.set_result(False)
        await report_direct(conn)  # type: ignore[arg-type]

    asyncio.run(run())
    assert capsys.readouterr().out == ""
