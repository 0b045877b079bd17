from serve_core import wire


class FakeTransport:
    def __init__(self):
        self.out = bytearray()

    def write(self, data):
        self.out += data

    def is_closing(self):
        return False

    def get_extra_info(self, name):
        return None

    def close(self):
        pass


def test_frames_survive_arbitrary_splits():
    got = []
    proto = wire.FrameProtocol(got.append, lambda e: None)
    msgs = [(wire.REQ, i, "call", "m", (b"x" * i,), {"k": i}, {}) for i in range(50)]
    stream = b"".join(wire.encode(m) for m in msgs)
    for i in range(0, len(stream), 7):  # deliver in 7-byte pieces
        proto.data_received(stream[i : i + 7])
    assert got == msgs


def test_send_writes_one_frame():
    sent = []
    proto = wire.FrameProtocol(sent.append, lambda e: None)
    t = FakeTransport()
    proto.connection_made(t)
    proto.send((wire.RESULT, 1, {"a": 1}, 0))
    other = wire.FrameProtocol(sent.append, lambda e: None)
    other.data_received(bytes(t.out))
    assert sent == [(wire.RESULT, 1, {"a": 1}, 0)]


def test_lambdas_are_pickled_by_value():
    got = []
    proto = wire.FrameProtocol(got.append, lambda e: None)
    proto.data_received(wire.encode((wire.RESULT, 1, lambda x: x + 1, 0)))
    assert got[0][2](1) == 2


def test_connection_lost_is_reported():
    lost = []
    proto = wire.FrameProtocol(lambda m: None, lost.append)
    proto.connection_made(FakeTransport())
    proto.connection_lost(None)
    assert lost == [None] and proto.transport is None


def test_unreadable_frame_keeps_its_request_id():
    got = []
    proto = wire.FrameProtocol(got.append, lambda e: None)
    data = b"\x80\x04cno_such_module_xyz\nThing\n."  # a class the receiver cannot import
    frame = wire._HEAD.pack(len(data), 42) + data
    proto.data_received(frame + wire.encode((wire.CANCEL, 7)))
    assert got[0][0] == wire.UNREADABLE and got[0][1] == 42 and "no_such_module_xyz" in got[0][2]
    assert got[1] == (wire.CANCEL, 7)  # the stream stays in sync after a bad frame
