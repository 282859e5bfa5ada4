"""An SMTP server that only counts: run as its own process by benchmarks/notices.py.

    python benchmarks/smtp_sink.py --port 0

aiosmtpd on 127.0.0.1; accepts every mail and keeps nothing but counts: mails,
recipients, distinct recipients, connections. Prints `READY <port>` once it
listens; on SIGTERM (or SIGINT) prints one JSON line of counts and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from aiosmtpd.smtp import SMTP, Envelope, Session


class Counter:
    def __init__(self) -> None:
        self.mails = 0
        self.recipients = 0
        self.distinct: set[str] = set()
        self.connections = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.mails += 1
        self.recipients += len(envelope.rcpt_tos)
        self.distinct.update(a.lower() for a in envelope.rcpt_tos)
        return "250 2.0.0 OK"

    def counts(self) -> dict:
        return {
            "mails": self.mails,
            "recipients": self.recipients,
            "distinct_recipients": len(self.distinct),
            "connections": self.connections,
        }


async def main(port: int) -> None:
    counter = Counter()
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        counter.connections += 1
        return SMTP(counter, hostname="sink.localhost", ident="smtp-sink", timeout=300)

    server = await loop.create_server(factory, host="127.0.0.1", port=port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()
    print(json.dumps(counter.counts()), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    args = ap.parse_args()
    asyncio.run(main(args.port))
    sys.exit(0)
