"""The one exception the protocol decoders raise."""


class DecodeError(ValueError):
    """Bytes that do not decode as the expected message.

    Every decoder in :mod:`protocol` raises this (and only this) for malformed
    input, whatever the bytes are.
    """
