// A card API written the way Plain documents it, for tests/cards/test_plain_dialect.py.
//
// Every request must pass two verifiers of the Plain-Request-Signature header, the hex
// HMAC-SHA256 of the body under the shared secret:
// - on the raw body bytes, compared with crypto.timingSafeEqual (the careful way);
// - as Plain's docs (plain.com/docs/request-signing) write it: the HMAC of
//   JSON.stringify(<the parsed body>), compared with !== (so our exact bytes must survive
//   a JSON.parse / JSON.stringify round trip).
// A request failing either gets 401 naming it. A verified one gets one card per requested
// key whose components say what arrived: the workspace id, every request header name (so
// the test can check nothing else was sent) and the customer.
//
// Run: PLAIN_SECRET=... node plain_card_api.js   (prints the port it listens on)
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");

const secret = process.env.PLAIN_SECRET;

function verifyAsPlainDocuments(parsedBody, signature) {
  const requestBody = JSON.stringify(parsedBody);
  const expectedSignature = crypto.createHmac("sha-256", secret).update(requestBody).digest("hex");
  return signature === expectedSignature;
}

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
    const signature = req.headers["plain-request-signature"];
    const body = JSON.parse(rawBody.toString("utf8"));
    const failed = !verifySignature(rawBody, signature)
      ? "raw body"
      : !verifyAsPlainDocuments(body, signature)
        ? "JSON.stringify of the parsed body"
        : null;
    if (failed) {
      res.statusCode = 401;
      res.end(JSON.stringify({ error: `invalid signature (${failed})` }));
      return;
    }
    const headerNames = Object.keys(req.headers).sort().join(",");
    const cards = body.cardKeys.map((key) => ({
      key,
      timeToLiveSeconds: 60,
      components: [
        { componentText: { text: `workspace ${req.headers["plain-workspace-id"]}` } },
        { componentPlainText: { plainText: headerNames } },
        { componentPlainText: { plainText: `customer ${body.customer.email} ${body.customer.externalId}` } },
      ],
    }));
    res.end(JSON.stringify({ cards }));
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
