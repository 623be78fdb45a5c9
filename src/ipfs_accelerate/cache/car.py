"""CAR v1 (the IPFS archive format): write a UnixFS DAG, read one back into a folder.

A CAR is `varint(len) dag-cbor{roots, version: 1}` then `varint(len) cid block` per block. The
header is always the same small map, so it is written and parsed by hand; every block read is
checked against its CID before it is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from multiformats import CID, varint

from . import unixfs


class CarError(ValueError):
    """A CAR file is malformed, a block does not match its CID, or a block is missing."""


def _header(root: CID) -> bytes:
    cid = b"\x00" + bytes(root)
    if len(cid) > 255:
        raise CarError("root CID too long")
    # {"roots": [tag42(bytes)], "version": 1}, dag-cbor canonical key order (length, then bytes)
    return b"\xa2\x65roots\x81\xd8\x2a\x58" + bytes([len(cid)]) + cid + b"\x67version\x01"


def write_car(src: Path, out: BinaryIO) -> tuple[CID, int]:
    """Pack a file or folder as a UnixFS DAG into `out`; returns (root CID, blocks written)."""
    blocks: list[tuple[CID, bytes]] = []
    root = unixfs.node_for(src, lambda cid, block: blocks.append((cid, block))).cid
    header = _header(root)
    out.write(varint.encode(len(header)) + header)
    seen: set[bytes] = set()
    for cid, block in reversed(blocks):  # root first, as ipfs-car does
        raw = bytes(cid)
        if raw in seen:
            continue
        seen.add(raw)
        out.write(varint.encode(len(raw) + len(block)) + raw + block)
    return root, len(seen)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value, size, _ = varint.decode_raw(buf[pos : pos + 10])
    return value, pos + size


def _parse_cid(buf: bytes, pos: int) -> tuple[CID, int]:
    """A binary CIDv1 at `pos`: version, codec, then a multihash (code, length, digest)."""
    start = pos
    version, pos = _read_varint(buf, pos)
    if version != 1:
        raise CarError(f"unsupported CID version {version}")
    _, pos = _read_varint(buf, pos)
    _, pos = _read_varint(buf, pos)
    length, pos = _read_varint(buf, pos)
    return CID.decode(buf[start : pos + length]), pos + length


def read_car(data: bytes) -> tuple[list[CID], dict[str, bytes]]:
    """Roots and verified blocks (keyed by CID string) of a CAR v1."""
    try:
        hlen, pos = _read_varint(data, 0)
        header = data[pos : pos + hlen]
        pos += hlen
        roots = _parse_header(header)
        blocks: dict[str, bytes] = {}
        while pos < len(data):
            length, pos = _read_varint(data, pos)
            end = pos + length
            if end > len(data):
                raise CarError("truncated block")
            cid, body = _parse_cid(data, pos)
            block = data[body:end]
            if unixfs.make_cid(cid.codec.name, block) != CID("base32", 1, cid.codec.name, cid.digest):
                raise CarError(f"block {cid} does not match its CID")
            blocks[str(cid.set(base="base32"))] = block
            pos = end
    except CarError:
        raise
    except Exception as exc:  # varint / CID decoding errors from multiformats
        raise CarError(f"malformed CAR: {type(exc).__name__}: {exc}") from exc
    return roots, blocks


def _parse_header(header: bytes) -> list[CID]:
    prefix = b"\xa2\x65roots"
    if not header.startswith(prefix) or not header.endswith(b"\x67version\x01"):
        raise CarError("not a CAR v1 header")
    pos = len(prefix)
    count = header[pos] - 0x80
    pos += 1
    roots = []
    for _ in range(count):
        if header[pos : pos + 3] != b"\xd8\x2a\x58":
            raise CarError("unexpected root encoding in CAR header")
        n = header[pos + 3]
        raw = header[pos + 4 : pos + 4 + n]
        if raw[:1] != b"\x00":
            raise CarError("root CID lacks the multibase identity prefix")
        roots.append(CID.decode(raw[1:]).set(base="base32"))
        pos += 4 + n
    return roots


# ---- dag-pb / UnixFS decoding (only what unpacking a folder needs) -----------------------------
def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            yield num, value
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            yield num, buf[pos : pos + length]
            pos += length
        else:
            raise CarError(f"unsupported protobuf wire type {wire}")


def _pb_decode(block: bytes) -> tuple[int, list[tuple[CID, str]]]:
    kind = -1
    links: list[tuple[CID, str]] = []
    for num, value in _fields(block):
        if num == 2 and isinstance(value, bytes):
            cid, name = None, ""
            for lnum, lval in _fields(value):
                if lnum == 1 and isinstance(lval, bytes):
                    cid = CID.decode(lval).set(base="base32")
                elif lnum == 2 and isinstance(lval, bytes):
                    name = lval.decode()
            if cid is None:
                raise CarError("dag-pb link without a hash")
            links.append((cid, name))
        elif num == 1 and isinstance(value, bytes):
            for dnum, dval in _fields(value):
                if dnum == 1 and isinstance(dval, int):
                    kind = dval
    return kind, links


def _safe_name(name: str) -> str:
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        raise CarError(f"unsafe entry name in CAR: {name!r}")
    return name


def unpack(root: CID, blocks: dict[str, bytes], dest: Path) -> None:
    """Materialise the UnixFS DAG under `root` at `dest` (a new file or folder)."""
    key = str(root.set(base="base32"))
    if key not in blocks:
        raise CarError(f"block {key} missing from CAR")
    block = blocks[key]
    if root.codec.name == unixfs.RAW:
        dest.write_bytes(block)
        return
    kind, links = _pb_decode(block)
    if kind == 1:
        dest.mkdir()
        for cid, name in links:
            unpack(cid, blocks, dest / _safe_name(name))
    elif kind == 2:
        with dest.open("wb") as fh:
            for chunk in _file_chunks(root, blocks):
                fh.write(chunk)
    else:
        raise CarError(f"unsupported UnixFS node type {kind} at {key}")


def _file_chunks(cid: CID, blocks: dict[str, bytes]) -> Iterator[bytes]:
    key = str(cid.set(base="base32"))
    if key not in blocks:
        raise CarError(f"block {key} missing from CAR")
    if cid.codec.name == unixfs.RAW:
        yield blocks[key]
        return
    _, links = _pb_decode(blocks[key])
    for child, _ in links:
        yield from _file_chunks(child, blocks)
