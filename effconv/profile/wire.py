"""Read an ONNX file without its weight bytes.

A static profile needs every initializer's dims and type, never its values. MobileNet v1 is 17 MB
of which ~50 KB is graph; reading the file and parsing it costs ~6 ms, nearly all of it copying
weights. `strip_weights` walks the protobuf wire format of a memory-mapped file instead and
rebuilds the bytes of the model with the large `raw_data` fields of the main graph's initializers
left out (their pages are never touched), recording each one's length for the byte-count check.

Only what is needed is decoded: ModelProto.graph (field 7), GraphProto.initializer (field 5),
TensorProto.raw_data (field 9); every other field is copied as it is, so the stripped model parses
to the original minus those bytes. Anything unexpected (groups, truncation, a varint over 64 bits)
raises Malformed and the caller parses the whole file the usual way, which reports the error.
"""

from __future__ import annotations

import mmap
from pathlib import Path

MODEL_GRAPH, GRAPH_INITIALIZER, TENSOR_RAW_DATA = 7, 5, 9
STRIP_MIN_BYTES = 16384  # raw_data above this is > 1024 elements of any type: the skeleton's cut
_LEN = 2  # wire type: length-delimited


class Malformed(Exception):
    """The bytes are not the protobuf this module expects; parse the file the usual way."""


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise Malformed
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf, start: int, end: int):
    """(field number, wire type, field start, payload start, payload end) for each field."""
    pos = start
    while pos < end:
        key, p = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            pend = _varint(buf, p)[1]
        elif wire == 1:
            pend = p + 8
        elif wire == _LEN:
            n, p = _varint(buf, p)
            pend = p + n
        elif wire == 5:
            pend = p + 4
        else:  # groups (3, 4) are not in ONNX
            raise Malformed
        if pend > end:
            raise Malformed
        yield field, wire, pos, p, pend
        pos = pend


def _tensor(buf, start: int, end: int, min_bytes: int) -> tuple[bytes, int | None]:
    """The tensor's bytes without its raw_data when that is large, and its length (None: kept).
    Protobuf keeps the last of repeated raw_data fields: that one decides, and all are dropped."""
    fields = list(_fields(buf, start, end))
    raws = [f for f in fields if f[0] == TENSOR_RAW_DATA]
    last = raws[-1] if raws else None
    if last is None or last[1] != _LEN or last[4] - last[3] <= min_bytes:
        return bytes(buf[start:end]), None
    return b"".join(buf[f[2]:f[4]] for f in fields if f[0] != TENSOR_RAW_DATA), last[4] - last[3]


def _message(buf, fstart: int, body: bytes) -> list:
    """A length-delimited field rewritten: its original tag, the new length, the new body."""
    return [buf[fstart:_varint(buf, fstart)[1]], _encode_varint(len(body)), body]


def _graph(buf, start: int, end: int, min_bytes: int, lengths: dict[int, int], count: list[int]) -> bytes:
    parts = []
    for field, wire, fstart, pstart, pend in _fields(buf, start, end):
        if field == GRAPH_INITIALIZER and wire == _LEN:
            body, dropped = _tensor(buf, pstart, pend, min_bytes)
            if dropped is not None:
                lengths[count[0]] = dropped
            count[0] += 1  # initializer order, across graph fields that protobuf merges
            parts += _message(buf, fstart, body)
        else:
            parts.append(buf[fstart:pend])
    return b"".join(parts)


def strip_weights(path: str | Path, min_bytes: int = STRIP_MIN_BYTES) -> tuple[bytes, dict[int, int]]:
    """The model's bytes without the main graph's large initializer payloads, and {initializer
    index: raw_data length} for those left out. Raises Malformed (parse normally) or OSError."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        lengths: dict[int, int] = {}
        count, parts = [0], []
        for field, wire, fstart, pstart, pend in _fields(mm, 0, len(mm)):
            if field == MODEL_GRAPH and wire == _LEN:
                parts += _message(mm, fstart, _graph(mm, pstart, pend, min_bytes, lengths, count))
            else:
                parts.append(mm[fstart:pend])
        return b"".join(parts), lengths
