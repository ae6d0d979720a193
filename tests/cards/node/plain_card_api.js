// A card API written the way Plain documents it, for tests/cards/test_plain_dialect.py.
//
// It verifies every request as Plain's docs show: the Plain-Request-Signature header is
// the hex HMAC-SHA256 of the raw request body under the shared secret, compared with
// crypto.timingSafeEqual. A request that does not verify gets 401. A verified one gets one
// card per requested key whose components say what arrived: the workspace id, and every
// request header name (so the test can check nothing else was sent).
//
// Run: PLAIN_SECRET=... node plain_card_api.js   (prints the port it listens on)
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");

const secret = process.env.PLAIN_SECRET;

function verifySignature(rawBody, signature) {
  if (typeof signature !== "string") return false;
  const expected = crypto.createHmac("sha256", secret).update(rawBody).digest("hex");
  const received = Buffer.from(signature, "utf8");
  const computed = Buffer.from(expected, "utf8");
  return received.length === computed.length && crypto.timingSafeEqual(received, computed);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const rawBody = Buffer.concat(chunks);
    res.setHeader("Content-Type", "application/json");
    if (!verifySignature(rawBody, req.headers["plain-request-signature"])) {
      res.statusCode = 401;
      res.end(JSON.stringify({ error: "invalid signature" }));
      return;
    }
    const body = JSON.parse(rawBody.toString("utf8"));
    const headerNames = Object.keys(req.headers).sort().join(",");
    const cards = body.cardKeys.map((key) => ({
      key,
      timeToLiveSeconds: 60,
      components: [
        { componentText: { text: `workspace ${req.headers["plain-workspace-id"]}` } },
        { componentPlainText: { plainText: headerNames } },
        { componentPlainText: { plainText: `customer ${body.customer.email}` } },
      ],
    }));
    res.end(JSON.stringify({ cards }));
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
