"""A webhook receiver for caddy-webhooks.

It verifies each request's Standard Webhooks signature, skips webhook ids it
has already accepted, responds at once, and processes the events one by one
on a worker thread.

Configuration, from the environment:
  WEBHOOK_SECRET      the endpoint's secret (whsec_...), to verify v1 signatures
  WEBHOOK_PUBLIC_KEY  the endpoint's ed25519 public key (whpk_...), to verify
                      v1a signatures; needs the cryptography package
  HOST, PORT          the listen address; default 127.0.0.1 and 8000

Run it with `pip install -r requirements.txt && python receiver.py`.
"""

import base64
import json
import logging
import os
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

MAX_BODY = 1 << 20  # above the largest event you expect
TOLERANCE_SECONDS = 5 * 60  # as in the Standard Webhooks libraries
KEEP_IDS_SECONDS = 7 * 24 * 3600  # Caddy keeps events for 7 days by default

log = logging.getLogger("receiver")


class SeenIds:
    """Accepted webhook ids with the time they arrived.

    Being in memory, they are forgotten on restart: a production receiver
    stores them with the effects of each event, in one transaction.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._ids = {}  # insertion-ordered, so the oldest come first

    def add(self, webhook_id):
        """Record webhook_id and return whether it was new."""
        now = time.monotonic()
        with self._lock:
            for old, at in list(self._ids.items()):
                if now - at <= KEEP_IDS_SECONDS:
                    break
                del self._ids[old]
            if webhook_id in self._ids:
                return False
            self._ids[webhook_id] = now
            return True

    def remove(self, webhook_id):
        with self._lock:
            self._ids.pop(webhook_id, None)


def load_public_key(value):
    # Imported only when needed, so v1 receivers need no cryptography package.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    raw = base64.b64decode(value.removeprefix("whpk_"))
    if len(raw) != 32:
        raise ValueError("expected whpk_ followed by 32 bytes in base64")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_ed25519(public_key, body, headers):
    """Check the v1a signatures over "<id>.<timestamp>.<body>", which the
    standardwebhooks package does not verify, and raise when none matches."""
    from cryptography.exceptions import InvalidSignature

    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not webhook_id or not timestamp.isdigit():
        raise WebhookVerificationError("missing webhook-id or invalid webhook-timestamp")
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("webhook-timestamp is more than 5 minutes away from now")
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    for entry in headers.get("webhook-signature", "").split():
        if not entry.startswith("v1a,"):
            continue
        try:
            public_key.verify(base64.b64decode(entry[4:]), signed)
            return
        except (InvalidSignature, ValueError):
            continue
    raise WebhookVerificationError("no matching v1a signature")


class Receiver:
    def __init__(self, secret, public_key):
        self.webhook = Webhook(secret) if secret else None
        self.public_key = load_public_key(public_key) if public_key else None
        self.seen = SeenIds()
        self.events = queue.Queue(maxsize=1000)

    def verify(self, body, headers):
        """Return the parsed event when a v1 signature matches the secret or
        a v1a signature matches the public key. Raise
        WebhookVerificationError otherwise, and ValueError for a signed body
        that is not JSON."""
        errors = []
        if self.webhook:
            try:
                # Checks the timestamp and every v1 signature of the header.
                return self.webhook.verify(body, headers)
            except WebhookVerificationError as err:
                errors.append(f"v1: {err}")
        if self.public_key:
            try:
                verify_ed25519(self.public_key, body, headers)
                return json.loads(body)
            except WebhookVerificationError as err:
                errors.append(f"v1a: {err}")
        raise WebhookVerificationError("; ".join(errors))

    def work(self):
        """Do the work of each event after its response went out. Events of
        one type may arrive in any order."""
        while True:
            webhook_id, event = self.events.get()
            log.info("processing event webhook_id=%s type=%s", webhook_id, event.get("type"))


def make_handler(receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.send_error(413, "body too large")
                return
            # Verify the raw bytes: parsing and encoding the JSON again would
            # change them and break the signature.
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            try:
                event = receiver.verify(body, headers)
            except WebhookVerificationError as err:
                log.warning("rejected webhook webhook_id=%s: %s", headers.get("webhook-id"), err)
                self.send_error(401, "invalid signature")
                return
            except ValueError:
                self.send_error(400, "body is not JSON")
                return

            webhook_id = headers["webhook-id"]
            if not receiver.seen.add(webhook_id):
                # A retry of an event that was accepted: respond with 2xx, or Caddy keeps retrying.
                self.respond(204)
                return
            try:
                receiver.events.put_nowait((webhook_id, event))
            except queue.Full:
                # The worker is behind. Caddy honours Retry-After on 503.
                receiver.seen.remove(webhook_id)
                self.respond(503, {"Retry-After": "30"})
                return
            self.respond(204)

        def do_GET(self):
            self.send_error(405, "webhooks are POST requests")

        def respond(self, status, headers=None):
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):
            log.debug(format, *args)

    return Handler


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    secret = os.environ.get("WEBHOOK_SECRET")
    public_key = os.environ.get("WEBHOOK_PUBLIC_KEY")
    if not secret and not public_key:
        sys.exit("set WEBHOOK_SECRET (whsec_...) or WEBHOOK_PUBLIC_KEY (whpk_...), as configured for the endpoint in Caddy")
    receiver = Receiver(secret, public_key)
    threading.Thread(target=receiver.work, daemon=True).start()

    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer((host, port), make_handler(receiver))
    log.info("receiving webhooks on %s:%d v1=%s v1a=%s", host, port, bool(receiver.webhook), bool(receiver.public_key))
    server.serve_forever()


if __name__ == "__main__":
    main()
