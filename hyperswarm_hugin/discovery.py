"""A joined topic and its sessions: hyperswarm's discovery (lib/peer-discovery.js), seen from the API.

One :class:`TopicDiscovery` per topic, shared by the :class:`PeerDiscovery` sessions that ``join``
returns; when and how the topic is announced and looked up is the TopicActor's call.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from hyperswarm_hugin.actors.messages import RefreshTopic
from hyperswarm_hugin.swarm_host import SwarmDestroyed

if TYPE_CHECKING:
    from hyperswarm_hugin.swarm import Hyperswarm


class TopicDiscovery:
    """The swarm's discovery of one topic (what ``status(topic)`` returns); sessions share it."""

    def __init__(self, swarm: Hyperswarm, topic: bytes) -> None:
        self.swarm = swarm
        self.topic = topic
        self.sessions: list[PeerDiscovery] = []
        self.task: asyncio.Task[None] | None = None
        self.destroyed = False

    @property
    def is_server(self) -> bool:
        """Some session announces the topic."""
        return any(s.is_server for s in self.sessions)

    @property
    def is_client(self) -> bool:
        """Some session looks the topic up."""
        return any(s.is_client for s in self.sessions)

    def _roles_changed(self) -> None:
        if not self.destroyed:
            self.swarm._tell(RefreshTopic(self.topic, self.is_server, self.is_client, self.swarm._now()))

    async def refresh(self) -> None:
        """Announce / look the topic up again now."""
        if self.destroyed:
            raise SwarmDestroyed("this discovery was destroyed")
        if self.task is not None and not self.task.done():
            await self.flushed()
        self._roles_changed()
        await self.flushed()

    async def flushed(self) -> bool:
        """Wait until the current announce / lookup has completed (and the server is listening)."""
        await self.swarm._listened()
        while self.task is not None and not self.task.done():
            task = self.task
            await asyncio.wait({task})
        return not self.destroyed

    async def destroy(self) -> None:
        """Leave the topic (every session of it)."""
        await self.swarm.leave(self.topic)


class PeerDiscovery:
    """One ``join`` of a topic (hyperswarm's discovery session)."""

    def __init__(self, discovery: TopicDiscovery, server: bool, client: bool) -> None:
        self.discovery = discovery
        self.is_server = server
        self.is_client = client
        self.destroyed = False

    @property
    def topic(self) -> bytes:
        """The topic this session joined."""
        return self.discovery.topic

    async def flushed(self) -> bool:
        """Wait until this topic has been announced (server) and looked up (client) once."""
        return await self.discovery.flushed()

    async def refresh(self, *, client: bool | None = None, server: bool | None = None) -> None:
        """Change this session's roles (or keep them) and announce / look up again."""
        if self.destroyed:
            raise SwarmDestroyed("this discovery was destroyed")
        client = self.is_client if client is None else bool(client)
        server = self.is_server if server is None else bool(server)
        if not client and not server:
            raise ValueError("a discovery is a client, a server or both")
        self.is_client, self.is_server = client, server
        await self.discovery.refresh()

    async def destroy(self) -> None:
        """End this session; the topic is left (and unannounced) once no session needs it."""
        if self.destroyed:
            return
        self.destroyed = True
        sessions = self.discovery.sessions
        if self in sessions:
            sessions.remove(self)
        if not sessions:
            await self.discovery.swarm.leave(self.topic)
        else:
            self.discovery._roles_changed()
            await self.discovery.flushed()
