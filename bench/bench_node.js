'use strict';
// bench_node.js SOCKET N LAT: the Node.js client (client/node) — N sleep-0 submits pipelined
// on one connection (submitMany), then LAT submit -> done round trips one at a time (the
// handle resolves from task.done). Prints {"pipelined_per_s": ..., "done_p50_us": ...}.
// bench_clients.py runs it.
const path = require('path');
const corod = require(path.join(__dirname, '..', 'client', 'node'));

async function main() {
  const [sock, n, lat] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
  const c = await corod.Client.connect(sock);
  const specs = Array.from({ length: n }, () => ({ kind: 'sleep', args: { seconds: 0 } }));
  let t0 = process.hrtime.bigint();
  const tasks = await c.submitMany(specs);
  const rate = n / (Number(process.hrtime.bigint() - t0) / 1e9);
  if (tasks.length !== n) throw new Error('lost submits');
  const lats = [];
  for (let i = 0; i < lat; i++) {
    t0 = process.hrtime.bigint();
    await (await c.sleep(0)).result();
    lats.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  lats.sort((a, b) => a - b);
  console.log(JSON.stringify({ pipelined_per_s: rate, done_p50_us: lats[Math.floor(lats.length / 2)] }));
  c.close();
}
main().catch((e) => { console.error(e); process.exit(1); });
