"""Connection errors with hyperdht's codes (lib/errors.js): callers branch on ``code``."""

from __future__ import annotations


class ConnectError(ConnectionError):
    """A connection that could not be made; ``code`` is hyperdht's name for why
    (PEER_NOT_FOUND, PEER_CONNECTION_FAILED, HOLEPUNCH_ABORTED, ...)."""

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        super().__init__(f"{code}: {message}" if message else code)


class ServerRefused(ConnectError):
    """The server answered, but failed our checks (its ``mid`` is missing or not of our group)."""


class HolepunchError(ConnectError):
    """NAT holepunching failed.  Once punching has begun, every failure surfaces as
    HOLEPUNCH_ABORTED, as in Node (its puncher's abort fires first); ``reason`` keeps the
    specific code (HOLEPUNCH_PROBE_TIMEOUT, HOLEPUNCH_DOUBLE_RANDOMIZED_NATS,
    REMOTE_NOT_HOLEPUNCHABLE, ...)."""

    def __init__(self, code: str, message: str = "", reason: str | None = None) -> None:
        super().__init__(code, message)
        self.reason = reason or code

    @classmethod
    def aborted(cls, message: str = "holepunch aborted", reason: str | None = None) -> HolepunchError:
        return cls("HOLEPUNCH_ABORTED", message, reason)

    @classmethod
    def probe_timeout(cls) -> HolepunchError:
        return cls("HOLEPUNCH_PROBE_TIMEOUT", "holepunching probe did not finish in time")

    @classmethod
    def double_randomized(cls) -> HolepunchError:
        return cls("HOLEPUNCH_DOUBLE_RANDOMIZED_NATS", "both remote and local NATs are randomized")

    @classmethod
    def cannot_holepunch(cls, message: str = "cannot holepunch to remote") -> HolepunchError:
        return cls("CANNOT_HOLEPUNCH", message)

    @classmethod
    def invalid(cls) -> HolepunchError:
        return cls("HOLEPUNCH_INVALID", "invalid holepunch payload")

    @classmethod
    def bad_reply(cls) -> HolepunchError:
        return cls("BAD_HOLEPUNCH_REPLY", "bad holepunch reply")

    @classmethod
    def remote_aborted(cls, error: int) -> HolepunchError:
        return cls("REMOTE_ABORTED", f"remote aborted with error code {error}")

    @classmethod
    def remote_not_holepunching(cls) -> HolepunchError:
        return cls("REMOTE_NOT_HOLEPUNCHING", "remote is not holepunching")

    @classmethod
    def remote_not_holepunchable(cls) -> HolepunchError:
        return cls("REMOTE_NOT_HOLEPUNCHABLE", "remote is not holepunchable")


RELAY_FALLBACK_CODES = frozenset({
    "HOLEPUNCH_ABORTED", "HOLEPUNCH_DOUBLE_RANDOMIZED_NATS", "CANNOT_HOLEPUNCH", "REMOTE_NOT_HOLEPUNCHABLE",
})
"""Failures after which hyperswarm forces a blind relay on the next attempt (``shouldForceRelaying``)."""
