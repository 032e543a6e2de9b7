"""secret-stream framing against the spec's vector (secret-stream.md §12.1), and tampering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyperswarm_hugin.protocol.secret_stream import SecretStream, SecretStreamError

H = bytes.fromhex
TX = H("0449dc486159e766f752316ddeb055984cc0ad321ca030c4df8f52c054e8e813")
RX = H("556f6d151502cf93ef0534537a6f4a0a3d450fc2b7c134673493541d45db730b")
HASH = H("0937f1d25e8a428f039c1d2c129ffaf879df5946ec8e2e5bdf0559403e30100e"
         "1f75c6a87f4d753f8ec9beaa7dbce10779c430b393435dc509456429bc221dff")


def pinned() -> tuple[SecretStream, SecretStream]:
    initiator = SecretStream(is_initiator=True, tx=TX, rx=RX, handshake_hash=HASH, header=b"\xa1" * 24)
    responder = SecretStream(is_initiator=False, tx=RX, rx=TX, handshake_hash=HASH, header=b"\xb2" * 24)
    return initiator, responder


def test_the_js_vector_byte_for_byte() -> None:
    i, r = pinned()
    assert i.header_frame().hex() == ("380000705f10872c07469fdfa4f9f53b51bc6f3186448fe6624dcfe4ed9e6b4f8a65d7"
                                      + "a1" * 24)
    assert r.header_frame().hex() == ("38000027002d625cdcdc2051b748ade98854eb0e89aa9b7ed2fa9d8feb0bab6663a592"
                                      + "b2" * 24)
    assert i.encrypt(b"hello").hex() == "160000ff9e64e571c732c02a9663e4937c0a4b04398d5ed9d5"
    assert r.encrypt(b"world!").hex() == "17000010c95c8dafab08492e692c8ac2c4aa4fa2ba6719d91ac0"
    assert i.encrypt(b"second message").hex() == "1f00005abf233dc92f0c3b285ba433aa444176b0afab3314f9e27275f3e48cd840b8"
    assert i.encrypt(b"").hex() == "110000887b3aa8d0d00fafdf33f0ee82b4d7895b"
    assert i.send_key.hex() == "d6807880cb012f04cc4b7fbea2a44c7f8db921611c52f5d745ba4a9ea4649a2c"
    assert r.send_key.hex() == "af19df65145f239b6dc61d1f93569abf6a306c1f37cf7ddd285aed5ef730bbe0"


def test_the_js_frames_decrypt_in_any_chunking() -> None:
    wire = H("380000705f10872c07469fdfa4f9f53b51bc6f3186448fe6624dcfe4ed9e6b4f8a65d7" + "a1" * 24
             + "160000ff9e64e571c732c02a9663e4937c0a4b04398d5ed9d5"
             + "1f00005abf233dc92f0c3b285ba433aa444176b0afab3314f9e27275f3e48cd840b8"
             + "110000887b3aa8d0d00fafdf33f0ee82b4d7895b")
    for step in (1, 2, 7, 59, len(wire)):
        _, r = pinned()
        got: list[bytes] = []
        for offset in range(0, len(wire), step):
            got += r.receive(wire[offset:offset + step])
        assert got == [b"hello", b"second message"]  # the empty keep-alive is dropped
        r.finish()


def stream_of(messages: list[bytes]) -> tuple[bytes, list[int]]:
    sender = SecretStream(is_initiator=True, tx=TX, rx=RX, handshake_hash=HASH)
    frames = [sender.header_frame()] + [sender.encrypt(m) for m in messages]
    return b"".join(frames), [len(f) for f in frames]


@settings(max_examples=300)
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=6), st.data())
def test_any_flipped_bit_is_detected_and_nothing_corrupt_is_delivered(messages: list[bytes],
                                                                      data: st.DataObject) -> None:
    wire, sizes = stream_of(messages)
    bit = data.draw(st.integers(0, len(wire) * 8 - 1))
    bad = bytearray(wire)
    bad[bit // 8] ^= 1 << (bit % 8)
    receiver = SecretStream(is_initiator=False, tx=RX, rx=TX, handshake_hash=HASH)
    delivered: list[bytes] = []
    frame_of_bit, offset = 0, 0
    with pytest.raises(SecretStreamError):
        for index, size in enumerate(sizes):  # arriving frame by frame
            if offset <= bit // 8 < offset + size:
                frame_of_bit = index
            delivered += receiver.receive(bytes(bad[offset:offset + size]))
            offset += size
        receiver.finish()  # a grown length prefix leaves an unfinished frame at the end
    # Only intact messages from the frames before the flipped one (frame 0 is the header).
    assert delivered == messages[:len(delivered)]
    assert len(delivered) <= max(0, frame_of_bit - 1)


def test_wrong_header_id_and_size_are_refused() -> None:
    i, _ = pinned()
    other_responder = SecretStream(is_initiator=False, tx=RX, rx=TX, handshake_hash=HASH)
    with pytest.raises(SecretStreamError, match="stream id"):
        # An initiator expects the responder's id: feed it another initiator's header.
        SecretStream(is_initiator=True, tx=TX, rx=RX, handshake_hash=HASH).receive(i.header_frame())
    with pytest.raises(SecretStreamError, match="header message"):
        other_responder.receive(b"\x37\x00\x00" + bytes(55))
    with pytest.raises(SecretStreamError, match="empty frame"):
        SecretStream(is_initiator=False, tx=RX, rx=TX, handshake_hash=HASH).receive(b"\x00\x00\x00")


def test_oversized_messages_are_refused_before_sending() -> None:
    i, _ = pinned()
    with pytest.raises(ValueError, match="at most"):
        i.encrypt(bytes(16_777_199))


@pytest.mark.parametrize("direct", [True, False], ids=["libsodium-direct", "pynacl-bindings"])
def test_both_crypto_paths_give_the_js_vector_and_read_each_other(direct: bool,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-message calls go straight to libsodium when PyNaCl's cffi module is there, through
    PyNaCl's bindings otherwise: the same frames either way, across the scratch buffer's sizes."""
    from hyperswarm_hugin.protocol import secret_stream

    if not direct:
        monkeypatch.setattr(secret_stream, "_lib", None)
    else:
        assert secret_stream._lib is not None  # the fast path is what runs in production
    i, r = pinned()
    first = i.encrypt(b"hello")
    second = i.encrypt(bytearray(b"second message"))
    assert first.hex() == "160000ff9e64e571c732c02a9663e4937c0a4b04398d5ed9d5"
    assert second.hex() == "1f00005abf233dc92f0c3b285ba433aa444176b0afab3314f9e27275f3e48cd840b8"
    sizes = [0, 1, 2047, 2048, 70_000, 3, secret_stream.SCRATCH_MAX - secret_stream.ABYTES + 1, 5]
    messages = [bytes([n % 251]) * n for n in sizes]
    wire = i.header_frame() + first + second + b"".join(i.encrypt(m) for m in messages)
    got = r.receive(wire[:100]) + r.receive(wire[100:])
    assert got == [b"hello", b"second message"] + [m for m in messages if m]
    # A frame that fails authentication is refused on this path too.
    bad = bytearray(i.encrypt(b"tampered"))
    bad[-1] ^= 1
    with pytest.raises(SecretStreamError, match="pull failed"):
        r.receive(bytes(bad))
