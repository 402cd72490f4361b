#!/usr/bin/env python3
"""A loopback SMTP server (aiosmtpd) for DeerFlow's notification tests.

Speaks real SMTP (EHLO, MAIL FROM, RCPT TO, DATA) through aiosmtpd. Each message accepted is
written to `--output` as one JSON line, flushed before the 250 reply:
    {"mail_from": str, "rcpt_tos": [str], "data": str (the whole message, headers and body)}
`--fail-first N` answers the DATA of the first N messages with `451 4.3.0 try again later` (a
temporary failure a client must retry); each is logged to `--output` as {"rejected": true, ...}.

The first stdout line is `listening on PORT` (flushed). SIGTERM or SIGINT stops it with status 0.
Usage: python scripts/smtp_sink.py --output messages.jsonl [--port 0] [--fail-first N]
"""
import argparse
import json
import signal
import socket
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, output, fail_first):
        self.output = output
        self.remaining_failures = fail_first
        self.lock = threading.Lock()

    def write(self, record):
        with self.lock, open(self.output, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")
            file.flush()

    async def handle_DATA(self, server, session, envelope):
        data = envelope.content.decode("utf-8", errors="replace") if isinstance(envelope.content, bytes) else envelope.content
        record = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos), "data": data}
        with self.lock:
            reject = self.remaining_failures > 0
            if reject:
                self.remaining_failures -= 1
        if reject:
            self.write(dict(record, rejected=True))
            return "451 4.3.0 try again later"
        self.write(record)
        return "250 2.0.0 OK"


def free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail-first", type=int, default=0)
    arguments = parser.parse_args()
    port = arguments.port or free_port(arguments.host)
    controller = Controller(Sink(arguments.output, arguments.fail_first), hostname=arguments.host, port=port)
    controller.start()
    print(f"listening on {port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
