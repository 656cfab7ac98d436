"""MEXC's published protobuf schema for the spot WebSocket (PushDataV3ApiWrapper
and its bodies) and the Python code protoc generated from it. Data definitions
only; engine/venues/mexc_spot.py decodes frames with them.

Sources (official: https://github.com/mexcdevelop/websocket-proto, which the MEXC
docs link under "Protocol Buffers Integration"):

- ``PublicAggreDealsV3Api.proto``: mexcdevelop/websocket-proto @ 094e767412fc. The
  published file ends ``bool isRpi = 6; int64 version = 6;``, two fields with one
  number, which protoc refuses; both are left out (a field 6 on the wire is then an
  unknown field and ignored). ``tradeId = 5`` is kept.
- The other 15 files: the fork whiteher0n/websocket-proto @ 0c31e77aedd7 (the
  index holds no other file of the official repo), minus the fork's own
  ``option go_package`` line (messages, fields and comments unchanged).
- ``PublicAggreDepthsV3Api.proto`` adds ``int64 lastOrderCreateTime = 6``, the
  field the official Diff.Depth docs sample shows (2026); the fork predates it.

Generated with grpcio-tools 1.85.1 (libprotoc 35.1, Python gencode 7.35.1; needs
protobuf >= 7.35.1 at runtime), from this directory::

    python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. *.proto
    sed -i -E 's/^import (\\w+_pb2) as /from . import \\1 as /' *_pb2.py *_pb2.pyi
    for f in *_pb2.py *_pb2.pyi; do sed -i '1i # ruff: noqa' $f; done

(protoc writes absolute imports; the sed makes them package-relative, and generated
code is exempt from lint.) grpcio-tools is a build tool only, not a dependency.
"""
