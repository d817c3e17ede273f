// The "node ws broadcast" row of bench/fanout.py: the original Live Score
// API's realtime stack (Node.js with the `ws` library) on the same load as
// the hub. One Redis subscriber per process; for every published change a
// plain `for (const c of clients) c.send(text)`. Subscribe frames are
// acknowledged and otherwise ignored: every socket gets every message.
//
//   node bench/node_edge/server.js --port 9000 --redis redis://... --channel PREFIX:changes
import http from "node:http";
import { parseArgs } from "node:util";
import { createClient } from "redis";
import { WebSocketServer } from "ws";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    redis: { type: "string" },
    channel: { type: "string" },
  },
});

const server = http.createServer((req, res) => {
  if (req.url === "/health") {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("ok");
    return;
  }
  res.writeHead(404);
  res.end();
});

const wss = new WebSocketServer({ server, path: "/ws" });
wss.on("connection", (ws) => {
  ws.on("message", () => ws.send('{"type":"subscribed"}'));
  ws.on("error", () => ws.terminate());
});

const subscriber = createClient({ url: values.redis });
subscriber.on("error", (err) => console.error("redis:", err.message));
await subscriber.connect();
await subscriber.subscribe(values.channel, (text) => {
  for (const client of wss.clients) client.send(text);
});

server.listen(Number(values.port), "127.0.0.1");
