"""A stream moved to another path (libudx's change_remote): new socket, address and peer stream
id at once, ``on_changed`` only once the peer acknowledged what was sent before; the firewall
hook for packets on another socket; the one-shot callback for data heard on the current path."""

from __future__ import annotations

import asyncio
from typing import Any

from hyperswarm_hugin.actors.udx_io import StreamMux
from hyperswarm_hugin.protocol.udx.packet import DATA, DEFAULT_RWND, MESSAGE, pack_header, unpack_header

RELAY = ("127.0.0.1", 1000)
DIRECT = ("127.0.0.1", 2000)


class _Endpoint:
    pooled = False

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []
        self.holds = 0

    def send(self, data: bytes, address: Any) -> None:
        self.sent.append((data, address))

    def send_batch(self, datagrams: list[bytes], address: Any) -> None:
        self.sent.extend((d, address) for d in datagrams)

    def hold(self) -> None:
        self.holds += 1

    def release(self) -> None:
        self.holds -= 1


def ack(stream_id: int, acked: int, kind: int = 0, payload: bytes = b"") -> bytes:
    return pack_header(0xFF, 1, kind, 0, stream_id, DEFAULT_RWND, 0, acked) + payload


def test_change_remote_moves_every_packet_and_reports_once_the_old_path_is_acked() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        mux = StreamMux(loop)
        relay, direct = _Endpoint(), _Endpoint()
        t = mux.create(relay)  # type: ignore[arg-type]
        t.connect(7, RELAY)  # the relay's stream for us
        t.write(b"x" * 3000)
        t.flush()
        assert relay.sent and all(unpack_header(d)[4] == 7 and a == RELAY for d, a in relay.sent)
        in_flight = t.stream.next_seq
        changed: list[str] = []
        foreign: list[tuple[Any, Any]] = []
        heard: list[str] = []
        t.change_remote(direct, 9, DIRECT, lambda: changed.append("changed"))  # type: ignore[arg-type]
        t.on_foreign = lambda endpoint, source: foreign.append((endpoint, source))
        t.write(b"y" * 100)
        t.flush()
        assert direct.holds == 1 and t.endpoint is direct
        assert direct.sent and all(unpack_header(d)[4] == 9 and a == DIRECT for d, a in direct.sent)
        # A late ack through the relay: the firewall hook sees it; the change waits for the rest.
        mux.dispatch([(ack(t.id, in_flight - 1), RELAY)], loop.time(), relay)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert foreign == [(relay, RELAY)] and changed == []
        t.on_foreign = None
        t.on_direct_data = lambda: heard.append("heard")
        mux.dispatch([(ack(t.id, in_flight), DIRECT)], loop.time(), direct)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert changed == ["changed"]
        assert heard == []  # a bare ack is no proof of the direct path
        mux.dispatch([(ack(t.id, in_flight, MESSAGE), DIRECT)], loop.time(), direct)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert heard == ["heard"]
        t.destroy()

    asyncio.run(main())


def test_change_remote_with_nothing_in_flight_reports_at_once() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        mux = StreamMux(loop)
        relay, direct = _Endpoint(), _Endpoint()
        t = mux.create(relay)  # type: ignore[arg-type]
        t.connect(7, RELAY)
        done = loop.create_future()
        t.change_remote(direct, 9, DIRECT, lambda: done.set_result(None))  # type: ignore[arg-type]
        await asyncio.wait_for(done, 1)
        t.on_direct_data = lambda: None
        mux.dispatch([(ack(t.id, 0, DATA, b"d"), RELAY)], loop.time(), direct)  # type: ignore[arg-type]
        assert t.on_direct_data is not None  # not from the direct address: no proof
        t.destroy()

    asyncio.run(main())
