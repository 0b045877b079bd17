"""Framing, the mutual handshake in front of it, and the frame cap, on fake transports."""

import asyncio
import os
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serve_core import metrics
from serve_core.data import frames, handshake, wire
from serve_core.data.handshake import ClientHandshake, HandshakeError, ServerHandshake
from serve_core.errors import FrameTooLargeError

SECRET = b"k" * 32


class FakeTransport:
    def __init__(self):
        self.out = bytearray()
        self.aborted = False

    def write(self, data):
        self.out += data

    def is_closing(self):
        return self.aborted

    def get_extra_info(self, name):
        return ("198.51.100.7", 4242) if name == "peername" else None

    def close(self):
        self.aborted = True

    def abort(self):
        self.aborted = True

    def take(self):
        data, self.out = bytes(self.out), bytearray()
        return data


def in_loop(fn):
    """Protocols start in an event loop (they arm the handshake timer there)."""
    async def run():
        return fn()
    return asyncio.run(run())


def pieces(data, cuts):
    """``data`` split at the given offsets."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return out


# -- framing between trusted ends ---------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(payloads=st.lists(st.binary(max_size=300), max_size=12), cuts=st.lists(st.integers(0, 5000), max_size=30))
def test_frames_survive_arbitrary_splits(payloads, cuts):
    got = []
    proto = wire.FrameProtocol(got.append, lambda e: None, None)
    msgs = [frames.Req(i + 1, "call", "m", (p,), {"k": i}, {}) for i, p in enumerate(payloads)]
    stream = b"".join(wire.encode(m) for m in msgs)
    for piece in pieces(stream, cuts):
        proto.data_received(piece)
    assert got == msgs


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(min_size=1, max_size=200))
def test_garbage_never_crashes_and_big_declarations_cut_off(garbage):
    got = []
    t = FakeTransport()
    proto = wire.FrameProtocol(got.append, lambda e: None, None, max_frame=4096)
    in_loop(lambda: proto.connection_made(t))
    proto.data_received(garbage)
    # Whatever came out is an Unreadable notice or a decoded frame; a frame declaring more
    # than the cap closed the connection with nothing buffered.
    for msg in got:
        assert isinstance(msg, frames.Frame)
    assert len(proto._buf) <= max(len(garbage), 12)
    if len(garbage) >= 12 and int.from_bytes(garbage[:4], "big") > 4096:
        assert t.aborted and not got and not proto._buf


def test_lambdas_are_pickled_by_value():
    got = []
    proto = wire.FrameProtocol(got.append, lambda e: None, None)
    proto.data_received(wire.encode(frames.Result(1, lambda x: x + 1, 0)))
    assert got[0].value(1) == 2


def test_connection_lost_is_reported():
    lost = []
    proto = wire.FrameProtocol(lambda m: None, lost.append, None)
    in_loop(lambda: proto.connection_made(FakeTransport()))
    proto.connection_lost(None)
    assert lost == [None] and proto.transport is None


def test_unreadable_frame_keeps_its_request_id():
    got = []
    proto = wire.FrameProtocol(got.append, lambda e: None, None)
    data = b"\x80\x04cno_such_module_xyz\nThing\n."  # a class the receiver cannot import
    frame = wire._HEAD.pack(len(data), 42) + data
    proto.data_received(frame + wire.encode(frames.Cancel(7)))
    assert isinstance(got[0], frames.Unreadable) and got[0].rid == 42 and "no_such_module_xyz" in got[0].reason
    assert got[1] == frames.Cancel(7)  # the stream stays in sync after a bad frame


@pytest.mark.parametrize("msg", [(99, 1), (0, 1, "too few"), "a string", 12, [3, 1, "v", 0], (None,)])
def test_a_pickle_that_holds_no_frame_is_unreadable(msg):
    got = []
    proto = wire.FrameProtocol(got.append, lambda e: None, None)
    data = pickle.dumps(msg)
    proto.data_received(wire._HEAD.pack(len(data), 5) + data + wire.encode(frames.Cancel(6)))
    assert isinstance(got[0], frames.Unreadable) and got[0].rid == 5 and "not a frame" in got[0].reason
    assert got[1] == frames.Cancel(6)


@given(st.sampled_from([frames.Req(1, "call", "m", (1,), {}, {}), frames.Cancel(2), frames.Reject(3, 4),
                        frames.Result(4, [1], 0), frames.Http(5, 200, [[b"a", b"b"]], b"x", 1),
                        frames.HttpStart(6, 201, []), frames.Chunk(7, b"c"), frames.End(8, 0)]))
def test_every_frame_goes_out_as_a_plain_tuple_and_comes_back_typed(frame):
    raw = pickle.loads(wire.encode(frame)[12:])
    assert type(raw) is tuple and raw[1:] == tuple(frame)
    assert frames.from_wire(raw, frame.rid) == frame and type(frames.from_wire(raw, frame.rid)) is type(frame)


# -- the frame cap --------------------------------------------------------------------


def test_a_request_over_the_cap_is_refused_before_it_is_sent():
    t = FakeTransport()
    proto = wire.FrameProtocol(lambda m: None, lambda e: None, None, max_frame=2048)
    in_loop(lambda: proto.connection_made(t))
    with pytest.raises(FrameTooLargeError, match="max_frame_bytes=2048"):
        proto.send(frames.Req(5, "call", "m", (b"x" * 4096,), {}, {}))
    assert t.out == b""


def test_a_reply_over_the_cap_becomes_an_error_naming_the_limit():
    t, got = FakeTransport(), []
    proto = wire.FrameProtocol(lambda m: None, lambda e: None, None, max_frame=2048)
    in_loop(lambda: proto.connection_made(t))
    proto.send(frames.Result(9, b"y" * 4096, 3))
    wire.FrameProtocol(got.append, lambda e: None, None).data_received(t.take())
    assert isinstance(got[0], frames.Error)
    rid, (original, err), ongoing = got[0]
    assert (rid, original, ongoing) == (9, None, 3)
    assert isinstance(err, FrameTooLargeError) and err.limit == 2048


# -- the handshake as a pure state machine ------------------------------------------


def run_handshake(server_secret, client_secret, cuts=(), after=b""):
    """Run both sides over byte pieces split at ``cuts``, as FrameProtocol does: once a
    side is done, what follows belongs to the frames."""
    server, client = ServerHandshake(server_secret), ClientHandshake(client_secret)
    proof = b""
    for piece in pieces(server.hello(), cuts):
        sent, _ = client.feed(piece)
        proof += sent or b""
    answer, following = None, b""
    for piece in pieces(proof + after, cuts):
        if server.done:
            following += piece
            continue
        answer, rest = server.feed(piece)
        following += rest
    client.feed(answer)
    return server, client, following


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(0, 100), max_size=8), after=st.binary(max_size=40))
def test_both_ends_authenticate_under_any_split_and_keep_what_follows(cuts, after):
    server, client, following = run_handshake(SECRET, SECRET, cuts, after)
    assert server.done and client.done
    assert following == after


def test_a_caller_without_the_secret_is_refused():
    with pytest.raises(HandshakeError, match="caller's proof"):
        run_handshake(SECRET, b"wrong" * 7)


def test_a_replica_without_the_secret_is_refused_by_the_caller():
    server, client = ServerHandshake(b"wrong" * 7), ClientHandshake(SECRET)
    proof, _ = client.feed(server.hello())
    # The rogue replica cannot answer: whatever 32 bytes it sends, the caller refuses.
    with pytest.raises(HandshakeError, match="replica's answer"):
        client.feed(os.urandom(handshake.ANSWER_BYTES))


def test_a_recorded_proof_does_not_open_another_connection():
    first, client = ServerHandshake(SECRET), ClientHandshake(SECRET)
    proof, _ = client.feed(first.hello())
    assert first.feed(proof)[0] is not None  # accepted once
    with pytest.raises(HandshakeError):
        ServerHandshake(SECRET).feed(proof)  # a fresh nonce: the replay fails


def test_a_replica_answer_cannot_be_reflected_as_a_caller_proof():
    # An attacker opens two connections and relays one replica's messages into the other.
    a, b = ServerHandshake(SECRET), ServerHandshake(SECRET)
    a_nonce = a.hello()[len(handshake.MAGIC):]
    b_nonce = b.hello()[len(handshake.MAGIC):]
    forged_answer = handshake._mac(SECRET, b"replica", b_nonce, a_nonce)  # what a replica could be made to say
    with pytest.raises(HandshakeError):
        a.feed(b_nonce + forged_answer)


def test_a_peer_that_does_not_speak_the_protocol_is_refused():
    with pytest.raises(HandshakeError, match="did not start"):
        ClientHandshake(SECRET).feed(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 40)


# -- the handshake in front of the framing --------------------------------------------


class Sentinel:
    """Unpickling this records that it happened (what an attacker's payload would do)."""

    ran = []

    def __reduce__(self):
        return (Sentinel.ran.append, ("unpickled",))


def test_nothing_is_unpickled_before_the_peer_is_authenticated():
    Sentinel.ran.clear()
    got, t = [], FakeTransport()
    before = metrics.child(metrics.AUTH_FAILURES, "replica")._value.get()
    proto = wire.FrameProtocol(got.append, lambda e: None, ServerHandshake(SECRET))
    in_loop(lambda: proto.connection_made(t))
    assert t.out.startswith(handshake.MAGIC)
    data = pickle.dumps((0, 1, Sentinel()))
    proto.data_received(wire._HEAD.pack(len(data), 1) + data)  # a frame where the proof belongs
    assert got == [] and Sentinel.ran == [] and t.aborted
    assert metrics.child(metrics.AUTH_FAILURES, "replica")._value.get() == before + 1


@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes_never_reach_the_unpickler(data):
    got, t = [], FakeTransport()
    proto = wire.FrameProtocol(got.append, lambda e: None, ServerHandshake(SECRET))
    in_loop(lambda: proto.connection_made(t))
    proto.data_received(data)
    assert got == []
    assert t.aborted == (len(data) >= handshake.PROOF_BYTES)
    assert len(proto._buf) == 0


def test_frames_flow_once_both_ends_have_proved_themselves():
    async def run():
        st_, ct = FakeTransport(), FakeTransport()
        server_got, client_got = [], []
        server = wire.FrameProtocol(server_got.append, lambda e: None, ServerHandshake(SECRET))
        client = wire.FrameProtocol(client_got.append, lambda e: None, ClientHandshake(SECRET))
        server.connection_made(st_)
        client.connection_made(ct)
        client.data_received(st_.take())  # hello -> proof
        request = wire.encode(frames.Req(3, "call", "m", (), {}, {}))
        server.data_received(ct.take() + request)  # proof (and a pipelined frame)
        client.data_received(st_.take())  # answer
        assert client.ready.done() and client.ready.exception() is None
        assert server.ready.done() and server.ready.exception() is None
        assert server_got == [frames.Req(3, "call", "m", (), {}, {})]
    asyncio.run(run())


def test_a_silent_peer_is_cut_off_after_the_handshake_deadline(monkeypatch):
    monkeypatch.setattr(wire, "TIMEOUT_S", 0.01)

    async def run():
        t = FakeTransport()
        proto = wire.FrameProtocol(lambda m: None, lambda e: None, ClientHandshake(SECRET))
        proto.connection_made(t)
        with pytest.raises(HandshakeError, match="no handshake"):
            await proto.ready
        assert t.aborted
    asyncio.run(run())


def test_connections_waiting_to_authenticate_are_bounded():
    async def run():
        gate = wire.HandshakeGate(limit=2)

        def connect():
            t = FakeTransport()
            proto = wire.FrameProtocol(lambda m: None, lambda e: None, ServerHandshake(SECRET), gate=gate)
            proto.connection_made(t)
            return proto, t

        (first, t1), (_, t2) = connect(), connect()
        _, t3 = connect()
        assert not t1.aborted and not t2.aborted and t3.aborted  # the third waits for nobody
        client = ClientHandshake(SECRET)
        proof, _ = client.feed(t1.take())
        first.data_received(proof)  # the first authenticates: its place frees up
        _, t4 = connect()
        assert not t4.aborted and gate.pending == 2
        first.connection_lost(None)
        assert gate.pending == 2  # an authenticated connection no longer counts
    asyncio.run(run())
