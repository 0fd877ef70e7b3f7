// A webhook receiver for caddy-webhooks. It verifies each request's
// Standard Webhooks signature, skips webhook ids it has already accepted,
// responds at once, and processes the events one by one afterwards.
//
// Configuration, from the environment:
//   WEBHOOK_SECRET      the endpoint's secret (whsec_...), to verify v1 signatures
//   WEBHOOK_PUBLIC_KEY  the endpoint's ed25519 public key (whpk_...), to verify v1a signatures
//   HOST, PORT          the listen address; default 127.0.0.1 and 8000
//
// Run it with `npm install && node receiver.mjs` in this directory.
import { createPublicKey, verify } from "node:crypto";
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const MAX_BODY = 1 << 20; // above the largest event you expect
const TOLERANCE_SECONDS = 5 * 60; // as in the Standard Webhooks libraries
const KEEP_IDS_MS = 7 * 24 * 3600 * 1000; // Caddy keeps events for 7 days by default
const MAX_QUEUE = 1000;

const secret = process.env.WEBHOOK_SECRET;
const publicKey = process.env.WEBHOOK_PUBLIC_KEY;
if (!secret && !publicKey) {
  console.error("set WEBHOOK_SECRET (whsec_...) or WEBHOOK_PUBLIC_KEY (whpk_...), as configured for the endpoint in Caddy");
  process.exit(1);
}
const webhook = secret ? new Webhook(secret) : null;
const ed25519Key = publicKey ? publicKeyFromWhpk(publicKey) : null;

// Accepted webhook ids with the time they arrived. Being in memory, they are
// forgotten on restart: a production receiver stores them with the effects
// of each event, in one transaction.
const seen = new Map();
const queue = [];
let draining = false;

function publicKeyFromWhpk(value) {
  const raw = Buffer.from(value.replace(/^whpk_/, ""), "base64");
  if (raw.length !== 32) {
    console.error("invalid WEBHOOK_PUBLIC_KEY: expected whpk_ followed by 32 bytes in base64");
    process.exit(1);
  }
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
}

// Checks the v1a signatures over "<id>.<timestamp>.<body>", which the
// standardwebhooks package does not verify.
function verifyEd25519(body, headers) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const seconds = Number.parseInt(timestamp ?? "", 10);
  if (!id || !/^[0-9]+$/.test(timestamp ?? "")) {
    throw new Error("missing webhook-id or invalid webhook-timestamp");
  }
  if (Math.abs(Date.now() / 1000 - seconds) > TOLERANCE_SECONDS) {
    throw new Error("webhook-timestamp is more than 5 minutes away from now");
  }
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
  for (const entry of (headers["webhook-signature"] ?? "").split(" ")) {
    if (entry.startsWith("v1a,") && verify(null, signed, ed25519Key, Buffer.from(entry.slice(4), "base64"))) {
      return JSON.parse(body.toString("utf8"));
    }
  }
  throw new Error("no matching v1a signature");
}

// Returns the parsed event when a v1 signature matches the secret or a v1a
// signature matches the public key, and throws otherwise.
function verifyWebhook(body, headers) {
  const errors = [];
  if (webhook) {
    try {
      // Checks the timestamp and every v1 signature of the header.
      return webhook.verify(body, headers);
    } catch (err) {
      errors.push(`v1: ${err.message}`);
    }
  }
  if (ed25519Key) {
    try {
      return verifyEd25519(body, headers);
    } catch (err) {
      errors.push(`v1a: ${err.message}`);
    }
  }
  throw new Error(errors.join("; "));
}

function forgetOldIds(now) {
  for (const [id, at] of seen) {
    if (now - at <= KEEP_IDS_MS) break; // a Map iterates in insertion order
    seen.delete(id);
  }
}

// Does the work of each event after its response went out. Events of one
// type may arrive in any order.
async function drain() {
  draining = true;
  while (queue.length > 0) {
    const { id, event } = queue.shift();
    console.log(`processing event webhook_id=${id} type=${event.type}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
  draining = false;
}

function handle(req, res, body) {
  let event;
  try {
    // Verify the raw bytes: parsing and encoding the JSON again would change
    // them and break the signature.
    event = verifyWebhook(body, req.headers);
  } catch (err) {
    console.warn(`rejected webhook webhook_id=${req.headers["webhook-id"]}: ${err.message}`);
    res.writeHead(401).end("invalid signature\n");
    return;
  }

  const id = req.headers["webhook-id"];
  const now = Date.now();
  forgetOldIds(now);
  if (seen.has(id)) {
    // A retry of an event that was accepted: respond with 2xx, or Caddy keeps retrying.
    res.writeHead(204).end();
    return;
  }
  if (queue.length >= MAX_QUEUE) {
    // The worker is behind. Caddy honours Retry-After on 503.
    res.writeHead(503, { "Retry-After": "30" }).end("busy\n");
    return;
  }
  seen.set(id, now);
  queue.push({ id, event });
  res.writeHead(204).end();
  if (!draining) {
    drain();
  }
}

const server = createServer((req, res) => {
  if (req.method !== "POST") {
    res.writeHead(405).end("webhooks are POST requests\n");
    return;
  }
  const chunks = [];
  let size = 0;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      // Destroying the request ends it without an "end" event.
      res.writeHead(413, { Connection: "close" }).end("body too large\n");
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on("end", () => handle(req, res, Buffer.concat(chunks)));
});

const host = process.env.HOST ?? "127.0.0.1";
const port = Number.parseInt(process.env.PORT ?? "8000", 10);
server.listen(port, host, () => {
  console.log(`receiving webhooks on ${host}:${port} v1=${Boolean(webhook)} v1a=${Boolean(ed25519Key)}`);
});
