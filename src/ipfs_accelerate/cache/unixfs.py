"""UnixFS v1 / dag-pb encoding, so a cached artifact's CID is the CID an IPFS node computes.

Settings are those of `ipfs-car pack` 3.x (its `@ipld/unixfs` defaults), checked against it in
tests/test_cache_ipfs.py:

- CIDv1, sha2-256, base32 text form;
- files split into fixed 1 MiB (1 048 576 byte) chunks stored as **raw leaves**; a file of one
  chunk (or empty) *is* its raw leaf, so a single blob's CID is a plain `raw` CID;
- larger files: a balanced tree of dag-pb File nodes, at most 1024 links per node;
- directories: one dag-pb Directory node (no HAMT sharding, no mode/mtime), links sorted by name.

The protobuf here is the few fields UnixFS needs (written by hand: it is ~40 lines and no
maintained Python dag-pb library installs here); CIDs, multihashes and multibase come from
`multiformats`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from multiformats import CID, multihash, varint

CHUNK_SIZE = 1 << 20
WIDTH = 1024
RAW, DAG_PB = "raw", "dag-pb"
_DIRECTORY, _FILE = 1, 2

# (cid, block bytes); a sink receives every block of a DAG (CAR export), None to only compute CIDs
Sink = Callable[[CID, bytes], None] | None


def make_cid(codec: str, block: bytes) -> CID:
    return CID("base32", 1, codec, multihash.wrap(hashlib.sha256(block).digest(), "sha2-256"))


def _field(num: int, wire: int) -> bytes:
    return varint.encode(num << 3 | wire)


def _bytes_field(num: int, value: bytes) -> bytes:
    return _field(num, 2) + varint.encode(len(value)) + value


def _uint_field(num: int, value: int) -> bytes:
    return _field(num, 0) + varint.encode(value)


def unixfs_data(kind: int, filesize: int | None = None, blocksizes: tuple[int, ...] = ()) -> bytes:
    out = _uint_field(1, kind)
    if filesize is not None:
        out += _uint_field(3, filesize)
    for size in blocksizes:  # proto2 `repeated uint64`, not packed (as go-unixfs / @ipld/unixfs)
        out += _uint_field(4, size)
    return out


@dataclass(frozen=True)
class Link:
    cid: CID
    name: str
    tsize: int  # bytes of the whole DAG under the link (blocks, encoded)


def pb_node(data: bytes, links: list[Link]) -> bytes:
    """dag-pb canonical form: links (field 2) first, then data (field 1)."""
    out = b""
    for link in links:
        body = _bytes_field(1, bytes(link.cid)) + _bytes_field(2, link.name.encode()) + _uint_field(3, link.tsize)
        out += _bytes_field(2, body)
    return out + _bytes_field(1, data)


@dataclass(frozen=True)
class Node:
    cid: CID
    tsize: int  # encoded size of this DAG
    size: int  # file bytes under it


def _emit(sink: Sink, codec: str, block: bytes) -> CID:
    cid = make_cid(codec, block)
    if sink is not None:
        sink(cid, block)
    return cid


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        first = fh.read(CHUNK_SIZE)
        yield first
        while chunk := fh.read(CHUNK_SIZE):
            yield chunk


def file_node(path: Path, sink: Sink = None) -> Node:
    """The DAG of one file: a raw leaf when it fits one chunk, else a balanced File tree."""
    level: list[Node] = []
    for chunk in _chunks(path):
        level.append(Node(_emit(sink, RAW, chunk), len(chunk), len(chunk)))
    if len(level) == 1:
        return level[0]
    while len(level) > 1:
        parents: list[Node] = []
        for i in range(0, len(level), WIDTH):
            group = level[i : i + WIDTH]
            size = sum(n.size for n in group)
            data = unixfs_data(_FILE, size, tuple(n.size for n in group))
            block = pb_node(data, [Link(n.cid, "", n.tsize) for n in group])
            parents.append(Node(_emit(sink, DAG_PB, block), len(block) + sum(n.tsize for n in group), size))
        level = parents
    return level[0]


def dir_node(path: Path, sink: Sink = None) -> Node:
    """The DAG of a folder (recursively); symlinks and special files are refused, not followed."""
    links: list[Link] = []
    size = 0
    for child in sorted(path.iterdir(), key=lambda p: p.name.encode()):
        if child.is_symlink():
            raise ValueError(f"refusing symlink in artifact: {child.name}")
        if child.is_dir():
            node = dir_node(child, sink)
        elif child.is_file():
            node = file_node(child, sink)
        else:
            raise ValueError(f"not a regular file: {child.name}")
        links.append(Link(node.cid, child.name, node.tsize))
        size += node.size
    block = pb_node(unixfs_data(_DIRECTORY), links)
    return Node(_emit(sink, DAG_PB, block), len(block) + sum(link.tsize for link in links), size)


def node_for(path: Path, sink: Sink = None) -> Node:
    return dir_node(path, sink) if path.is_dir() else file_node(path, sink)


def cid_of(path: Path) -> str:
    """CIDv1 (base32) of a file or folder, as `ipfs-car pack` / `ipfs add --cid-version 1` print it."""
    return str(node_for(path).cid)
