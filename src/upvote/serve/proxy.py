"""A tiny TCP reverse proxy whose upstream is a file, so a deploy can switch traffic atomically.

``upvote deploy`` starts it once on the public port. Every new connection is sent to the
``host:port`` written in the upstream file at that moment; connections already open stay on
their container until it stops. Switching traffic is therefore one ``os.replace`` of that file.
In a larger setup nginx, HAProxy or a cloud load balancer plays this role.

    python -m upvote.serve.proxy --listen 8000 --upstream-file /path/upstream
"""

import argparse
import asyncio
import os
from pathlib import Path


def write_upstream(path: Path, host: str, port: int) -> None:
    """Point new connections at ``host:port`` (atomic: readers see the old or the new target)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{host}:{port}\n")
    os.replace(tmp, path)


def read_upstream(path: Path) -> tuple[str, int]:
    host, port = path.read_text().strip().rsplit(":", 1)
    return host, int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(listen_host: str, listen_port: int, upstream_file: Path) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            host, port = read_upstream(upstream_file)
            up_r, up_w = await asyncio.open_connection(host, port)
        except (OSError, ValueError):
            client_w.close()
            return
        await asyncio.gather(_pipe(client_r, up_w), _pipe(up_r, client_w))

    server = await asyncio.start_server(handle, listen_host, listen_port, reuse_address=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen", type=int, required=True, help="public port")
    parser.add_argument("--upstream-file", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.listen_host, args.listen, args.upstream_file))


if __name__ == "__main__":
    main()
