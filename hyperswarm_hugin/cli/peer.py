"""``peer`` and ``demo``: swarm peers of a Hugin group."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from typing import TYPE_CHECKING, Any

from hyperswarm_hugin import Connection, GroupKey, Hyperswarm, KeyPair, PeerInfo, Testnet, fill32
from hyperswarm_hugin.actors.messages import DHTStatus
from hyperswarm_hugin.cli.output import CLEAN_CLOSE_WAIT, emit, metrics_fields, run_until_stopped, start_metrics
from hyperswarm_hugin.config.settings import PeerSettings, relay_keys
from hyperswarm_hugin.local_addresses import local_addresses
from hyperswarm_hugin.protocol.encoding import Address

if TYPE_CHECKING:
    from hyperswarm_hugin.metrics import MetricsServer


SOURCE_POOL = 4 * 1024 * 1024


def group_of(settings: PeerSettings) -> GroupKey:
    """``--group HEX``: the group seed's bytes, filled to 32 as the Hugin apps fill them;
    ``--invite TEXT``: an app invite, filled as text (GroupKey.from_invite)."""
    if settings.invite is not None:
        return GroupKey.from_invite(settings.invite)
    assert settings.group is not None
    return GroupKey.from_seed(fill32(bytes.fromhex(settings.group)))


async def serve_connection(conn: Connection, info: PeerInfo, settings: PeerSettings) -> None:
    remote = conn.remote_public_key.hex()
    received = 0
    sent_hash, back_hash = hashlib.sha256(), hashlib.sha256()
    writing: asyncio.Task[None] | None = None

    async def write_source() -> None:
        pool = os.urandom(SOURCE_POOL + 16384)  # slices of one random pool: os.urandom is slow
        with contextlib.suppress(ConnectionError):  # the reader reports it
            for offset in range(0, settings.bytes, 16384):
                start = (offset * 7919) % SOURCE_POOL
                chunk = pool[start:start + min(16384, settings.bytes - offset)]
                sent_hash.update(chunk)
                conn.write(chunk)
                await conn.drain()
            conn.end()  # an echo peer sends it all back, then ends too

    try:
        if settings.mode == "source" and settings.bytes:
            # Read while writing: an echo peer stops reading once we stop taking its echo.
            writing = asyncio.ensure_future(write_source())
        async for message in conn:
            received += len(message)
            if settings.mode == "echo":
                conn.write(message)
                await conn.drain()
            elif settings.mode == "source" and settings.bytes:
                back_hash.update(message)
                if received == settings.bytes:  # all of it came back: say whether it is the same
                    emit("echoed", remotePublicKey=remote, bytes=received,
                         ok=sent_hash.digest() == back_hash.digest())
        # The peer ended: end ours once all we wrote is out, and let the stream close cleanly
        # (closing at once would destroy it under the peer's last reads).
        conn.end()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(conn.wait_closed(), CLEAN_CLOSE_WAIT)
    except ConnectionError as exc:
        emit("error", remotePublicKey=remote, message=str(exc),
             cause=repr(exc.__cause__) if exc.__cause__ is not None else None)
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
        if settings.mode == "sink":
            emit("bytes", remotePublicKey=remote, bytesIn=received)
        await conn.close()


async def report_direct(conn: Connection) -> None:
    """A ``direct`` line when this relayed connection moves to a punched path (hyperdht 6.34):
    ``afterMs`` since it was handed out, ``remoteAddress`` where its packets go now."""
    start = asyncio.get_running_loop().time()
    try:
        await conn.wait_direct()
    except ConnectionError:  # closed while relayed
        return
    address = conn.remote_address
    emit("direct", remotePublicKey=conn.remote_public_key.hex(), holepunched=conn.holepunched,
         remoteAddress=f"{address[0]}:{address[1]}" if address else None,
         afterMs=round((asyncio.get_running_loop().time() - start) * 1000))


def nat_view(status: DHTStatus, bound: Address) -> dict[str, Any]:
    """What our NAT looks like from the DHT: ``firewalled``, ``nat`` (open / consistent /
    random / unknown, from the main socket's samples), ``publicAddress`` and the local
    ``addresses`` a handshake advertises."""
    public = status.public_address
    if not status.firewalled:
        nat = "open"
    elif public is None:
        nat = "unknown"
    else:
        nat = "random" if public[1] == 0 else "consistent"
    return {
        "firewalled": status.firewalled,
        "nat": nat,
        "publicAddress": f"{public[0]}:{public[1]}" if public else None,
        "addresses": [f"{h}:{p}" for h, p in local_addresses(bound)],
    }


async def run_peer(settings: PeerSettings) -> None:
    group = group_of(settings)
    topic = bytes.fromhex(settings.topic) if settings.topic else group.topic
    key_pair = KeyPair.from_seed(bytes.fromhex(settings.seed)) if settings.seed else None
    relays = relay_keys(settings.relay_through)
    swarm = Hyperswarm(group=group, key_pair=key_pair, bootstrap=settings.bootstrap, host=settings.host,
                       port=settings.port, relay_through=relays or None)
    tasks: set[asyncio.Task[None]] = set()

    def on_connection(conn: Connection, info: PeerInfo) -> None:
        remote = conn.remote_public_key.hex()
        # The connect call → this event (the swarm's bookkeeping in between), as swarm_peer.js
        # measures Node's: the "join → first connection" figure of bench/all.py
        ms = round((time.perf_counter() - conn.connect_started) * 1000, 2) if conn.connect_started is not None \
            else None
        emit("connection", remotePublicKey=remote, client=info.client, connectMs=ms, relayed=conn.relayed,
             holepunched=conn.holepunched)
        conn.add_close_callback(lambda: emit("close", remotePublicKey=remote))
        jobs = [serve_connection(conn, info, settings)]
        if conn.relayed:
            jobs.append(report_direct(conn))
        for job in jobs:
            task = asyncio.ensure_future(job)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    swarm.on("connection", on_connection)
    swarm.on("refused", lambda key, reason: emit("refused", remotePublicKey=key.hex() if key else None,
                                                 reason=reason))
    swarm.on("connect_error", lambda key, exc: emit("connect-error", remotePublicKey=key.hex(), code=exc.code,
                                                    reason=getattr(exc, "reason", exc.code), message=str(exc)))

    metrics: MetricsServer | None = None

    async def body() -> None:
        nonlocal metrics
        await swarm.start()
        metrics = start_metrics(settings, swarm=swarm)
        discovery = swarm.join(topic, server=settings.role != "client", client=settings.role != "server")
        await discovery.flushed()
        status = await swarm.dht.status()
        emit("ready", publicKey=swarm.key_pair.public_key.hex(), topic=topic.hex(),
             host=swarm.dht.address[0], port=swarm.dht.address[1], **nat_view(status, swarm.dht.address),
             **metrics_fields(metrics))

    try:
        await run_until_stopped(settings.timeout, body)
    finally:
        if metrics is not None:
            metrics.close()
        for task in list(tasks):
            task.cancel()
        await swarm.destroy()
        emit("stopped")


async def run_demo(peers: int, timeout: float) -> None:
    """A local testnet and a few swarm peers of one Hugin group: they find each other on the
    group's topic and greet each other over their encrypted connections."""
    async with await Testnet.create(5) as net:
        emit("testnet", bootstrap=[f"{h}:{p}" for h, p in net.bootstrap])
        group = GroupKey.from_invite(os.urandom(16).hex())
        swarms = [Hyperswarm(group=group, bootstrap=net.bootstrap) for _ in range(peers)]
        names = {s.key_pair.public_key: f"peer{i}" for i, s in enumerate(swarms)}
        greeted: asyncio.Queue[None] = asyncio.Queue()

        async def greet(me: str, conn: Connection) -> None:
            conn.write(f"hello from {me}".encode())
            message = await conn.read()
            if not message:  # a duplicate connection, closed by the swarm: the other one greets
                return
            emit("message", **{"to": me, "from": names.get(conn.remote_public_key, "?"), "text": message.decode()})
            greeted.put_nowait(None)

        try:
            for s in swarms:
                await s.start()
                me = names[s.key_pair.public_key]
                s.on("connection", lambda conn, info, me=me: asyncio.ensure_future(greet(me, conn)))
                emit("peer", name=me, publicKey=s.key_pair.public_key.hex())
            for s in swarms:
                s.join(group.topic)
            for _ in range(peers * (peers - 1)):
                await asyncio.wait_for(greeted.get(), timeout)
            emit("mesh", peers=peers, connections=sum(len(s.connections) for s in swarms))
        finally:
            for s in swarms:
                await s.destroy()
    emit("close")
