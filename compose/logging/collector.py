"""A minimal log collector speaking the Fluentd Forward protocol (v1), for compose.logging.yaml.

Docker's `fluentd` logging driver sends each container log line as a Forward-protocol event over
TCP. No Fluentd or Fluent Bit image can be pulled on offline machines and neither is packaged in
Debian 12, so this collector (Python 3 + python3-msgpack, both Debian packages) stands in for one:
it accepts the Message, Forward, PackedForward and CompressedPackedForward modes, answers `chunk`
acknowledgements, and writes every event as one JSON line to stdout and, when LOG_DIR is set, to
LOG_DIR/<tag>.log. A real deployment points `fluentd-address` at its own Fluentd or Fluent Bit.

Environment: LISTEN_HOST (0.0.0.0), LISTEN_PORT (24224), LOG_DIR (unset: stdout only).
"""

import asyncio
import datetime
import gzip
import json
import os
import re
import signal
import struct
import sys

import msgpack

LOG_DIR = os.environ.get("LOG_DIR")
SAFE_TAG = re.compile(r"[^A-Za-z0-9_.-]")
files = {}


def event_time(value):
    """Seconds since the epoch from an integer, a float or an EventTime (ext type 0)."""
    if isinstance(value, msgpack.ExtType) and value.code == 0 and len(value.data) == 8:
        seconds, nanoseconds = struct.unpack(">II", value.data)
        return seconds + nanoseconds / 1e9
    return float(value)


def emit(tag, time, record):
    if isinstance(tag, bytes):
        tag = tag.decode("utf-8", "replace")
    out = {
        "time": datetime.datetime.fromtimestamp(event_time(time), datetime.timezone.utc).isoformat(),
        "tag": tag,
    }
    for key, value in (record or {}).items():
        key = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if key == "log" and isinstance(value, str):
            # The services log JSON lines: keep them structured when they are.
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value
    line = json.dumps(out, separators=(",", ":"), default=str)
    print(line, flush=True)
    if LOG_DIR:
        name = SAFE_TAG.sub("_", tag) or "untagged"
        handle = files.get(name)
        if handle is None:
            handle = files[name] = open(os.path.join(LOG_DIR, name + ".log"), "a", encoding="utf-8")
        handle.write(line + "\n")
        handle.flush()


def entries(data):
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(data)
    yield from unpacker


def handle_message(message):
    """Emits the events of one Forward-protocol message; returns its options (or {})."""
    if not isinstance(message, (list, tuple)) or len(message) < 2:
        raise ValueError("not a Forward protocol message")
    tag, second = message[0], message[1]
    options = {}
    if isinstance(second, msgpack.ExtType) or isinstance(second, (int, float)):
        # Message mode: [tag, time, record, options] (time: integer or EventTime, ext type 0;
        # ExtType is a tuple, so this test comes first)
        events = [(second, message[2] if len(message) > 2 else {})]
        options = message[3] if len(message) > 3 and isinstance(message[3], dict) else {}
    elif isinstance(second, (list, tuple)):  # Forward mode: [tag, [[time, record], ...], options]
        events = second
        options = message[2] if len(message) > 2 and isinstance(message[2], dict) else {}
    elif isinstance(second, (bytes, str)):  # (Compressed)PackedForward: [tag, stream, options]
        options = message[2] if len(message) > 2 and isinstance(message[2], dict) else {}
        stream = second.encode("latin-1") if isinstance(second, str) else second
        if options.get("compressed") == "gzip":
            stream = gzip.decompress(stream)
        events = list(entries(stream))
    else:
        raise ValueError("not a Forward protocol message")
    for event in events:
        emit(tag, event[0], event[1])
    return options


async def serve_client(reader, writer):
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    try:
        while data := await reader.read(65536):
            unpacker.feed(data)
            for message in unpacker:
                options = handle_message(message)
                if isinstance(options, dict) and options.get("chunk"):
                    writer.write(msgpack.packb({"ack": options["chunk"]}))
                    await writer.drain()
    except (ValueError, TypeError, IndexError, msgpack.UnpackException, OSError) as error:
        print(json.dumps({"collector": "dropped connection", "error": str(error)}), file=sys.stderr, flush=True)
    finally:
        writer.close()


async def main():
    host = os.environ.get("LISTEN_HOST", "0.0.0.0")
    port = int(os.environ.get("LISTEN_PORT", "24224"))
    server = await asyncio.start_server(serve_client, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"collector": "listening", "address": f"{host}:{port}", "log_dir": LOG_DIR}), flush=True)
    async with server:
        await stop.wait()
    for handle in files.values():
        handle.close()


if __name__ == "__main__":
    asyncio.run(main())
