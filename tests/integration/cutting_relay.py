#!/usr/bin/env python3
"""A TCP relay that drops connections mid-answer, for the site tests: it
forwards LISTEN to TARGET both ways and cuts every other connection (the
1st, 3rd, ...) once CUT bytes have come back from TARGET, a connection
dropped mid-batch as a flaky WAN would. Prints "relaying" when ready and, at
SIGTERM, how many connections it cut.

  cutting_relay.py LISTEN_HOST:PORT TARGET_HOST:PORT CUT_BYTES
"""
import asyncio
import signal
import sys

listen, target, cut_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
connections = 0
cut = 0


async def pump(reader, writer, limit=None):
    moved = 0
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if limit is not None and moved + len(data) >= limit:
                writer.write(data[: limit - moved])
                await writer.drain()
                return True  # cut here
            moved += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    return False


async def handle(client_reader, client_writer):
    global connections, cut
    connections += 1
    limit = cut_bytes if connections % 2 == 1 else None
    host, port = target.rsplit(":", 1)
    try:
        server_reader, server_writer = await asyncio.open_connection(host, int(port))
    except OSError:
        client_writer.close()
        return
    up = asyncio.create_task(pump(client_reader, server_writer))
    down = asyncio.create_task(pump(server_reader, client_writer, limit))
    done, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    if down in done and down.result():
        cut += 1
    for t in pending:
        t.cancel()
    for w in (client_writer, server_writer):
        w.transport.abort()  # a drop, not a clean close


async def main():
    host, port = listen.rsplit(":", 1)
    server = await asyncio.start_server(handle, host, int(port))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("relaying", flush=True)
    async with server:
        await stop.wait()
    print(f"cut {cut} of {connections} connections", flush=True)


asyncio.run(main())
