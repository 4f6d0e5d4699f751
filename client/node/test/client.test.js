'use strict';
// The Node.js client against a real corod on a private socket: every method, typed errors,
// notes read with their subscribe's answer, 10,000 awaits on one connection, integers past
// 2^53, and a daemon that goes while tasks are awaited.
// COROD: the corod binary (default: the build tree's).
const test = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const corod = require('..');

const COROD = process.env.COROD || path.join(__dirname, '..', '..', '..', 'build', 'daemon', 'corod');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startDaemon(dir) {
  dir = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'corod-node-'));
  const sock = path.join(dir, 'corod.sock');
  const proc = spawn(COROD, ['--socket', sock, '--state-dir', path.join(dir, 'state')], { stdio: 'ignore' });
  for (let i = 0; i < 500; i++) {
    try {
      const c = await corod.Client.connect(sock);
      await c.hello();
      c.close();
      return { dir, sock, proc };
    } catch (e) { await sleep(10); }
  }
  throw new Error('corod did not start');
}

function stopDaemon(d, keep) {
  return new Promise((resolve) => {
    d.proc.once('exit', (code) => { if (!keep) fs.rmSync(d.dir, { recursive: true, force: true }); resolve(code); });
    d.proc.kill('SIGTERM');
  });
}

test('corod from Node.js', async (t) => {
  const d = await startDaemon();
  const c = await corod.Client.connect(d.sock);
  t.after(async () => { c.close(); assert.strictEqual(await stopDaemon(d), 0); });

  await t.test('tasks, results and typed errors', async () => {
    assert.strictEqual((await c.hello()).protocol, 1);
    const job = await c.submitExec(['sh', '-c', 'echo out; echo err >&2'], { env: { PATH: '/usr/bin:/bin' }, name: 'node' });
    assert.ok(job instanceof corod.Task);
    assert.strictEqual((await job.result()).exit_code, 0);
    const chunks = [];
    for await (const b of c.follow(job)) chunks.push(b);
    assert.strictEqual(Buffer.concat(chunks).toString(), 'out\n');
    assert.strictEqual(Buffer.from((await c.output(job, { stream: 'stderr' })).data).toString(), 'err\n');
    const a = await c.sleep(0, { x: [1, 2] });
    const g = await c.gather([a, await c.sleep(0, 'b')]);
    assert.deepStrictEqual(await g.result(), [{ x: [1, 2] }, 'b']);
    await assert.rejects((await c.submitExec(['sh', '-c', 'exit 3'])).result(),
      (e) => e instanceof corod.TaskFailed && e.code === 'exit_status' && e.details.exit_code === 3);
    await assert.rejects(c.get(1e12), (e) => e instanceof corod.NotFound && /not found/.test(e.message));
    await assert.rejects(c.sleep(-1), corod.BadRequest);
    await assert.rejects(c.call('no-such-method'), corod.UnknownMethod);
    assert.throws(() => corod.execSpec('ls -l'), TypeError);
    const long = await c.sleep(60);
    let doneEvent = null;
    long.onDone((tk) => { doneEvent = tk.record.state; });
    assert.strictEqual(await long.cancel('enough'), true);
    await assert.rejects(long.result(), (e) => e instanceof corod.TaskCancelled && e.message === 'enough');
    await sleep(10);
    assert.strictEqual(doneEvent, 'cancelled');
  });

  await t.test('every other method', async () => {
    await c.setGroup('node-held', { paused: true, parallel: 1 });
    assert.ok((await c.groups()).some((g) => g.name === 'node-held'));
    const tk = await c.submitExec(['cat'], { group: 'node-held', stdin_pipe: true, name: 'first' });
    assert.deepStrictEqual((await c.get(tk)).waiting, { reason: 'paused' });
    assert.strictEqual((await c.edit(tk, { name: 'second', priority: -1 })).name, 'second');
    assert.strictEqual((await c.spec(tk)).name, 'second');
    await c.setGroup('node-held', { paused: false });
    while ((await c.get(tk)).state !== 'running') await sleep(10);
    assert.strictEqual(await c.send(tk, Buffer.from('piped\n'), true), 6);
    assert.strictEqual((await tk.result()).exit_code, 0);
    await assert.rejects(c.signal(tk, 'HUP'), corod.InvalidState);
    const ids = [];
    for await (const r of c.list({ group: 'node-held' })) ids.push(r.id);
    assert.ok(ids.includes(tk.id));
    const again = await c.restart([tk]);
    assert.strictEqual(again.length, 1);
    await c.cancel(again[0]);
    await c.wait(again);
    assert.ok((await c.clean({ group: 'node-held' })) >= 2);
    await c.removeGroup('node-held');
  });

  await t.test('notes read with their subscribe answer are kept', async () => {
    const ended = [];
    for (let i = 0; i < 20; i++) ended.push(await c.sleep(0));
    await Promise.all(ended.map((x) => x.result()));
    const got = [];
    for await (const r of c.watch(ended)) got.push(r.id);
    assert.deepStrictEqual(got.sort((x, y) => x - y), ended.map((x) => x.id));
    const seen = [];
    const sub = await c.subscribe(ended.slice(0, 3), (r) => seen.push(r.id));
    await c.hello(); // its notes have come by the time this is answered
    assert.deepStrictEqual(seen.sort((x, y) => x - y), ended.slice(0, 3).map((x) => x.id));
    await c.unsubscribe(sub);
    await assert.rejects(c.unsubscribe(sub), corod.NotFound);
  });

  await t.test('10,000 awaits on one connection', async () => {
    const specs = Array.from({ length: 10000 }, (_, i) => corod.spec('sleep', { seconds: 0.01, result: i }));
    const tasks = await c.submitMany(specs);
    const results = await Promise.all(tasks.map((x) => x.result()));
    assert.deepStrictEqual(results, Array.from({ length: 10000 }, (_, i) => i));
  });
});

test('integers past 2^53 stay exact', () => {
  const big = (1n << 60n) + 7n;
  assert.deepStrictEqual(corod.exactInts({ id: big, ids: [5n, big], n: 3 }), { id: big, ids: [5, big], n: 3 });
  assert.deepStrictEqual(corod.wireInts({ id: 1e12, n: 3, x: 0.5 }), { id: 1000000000000n, n: 3, x: 0.5 });
});

test('a daemon that goes fails what is awaited with ConnectionLost', async () => {
  const d = await startDaemon();
  const c = await corod.Client.connect(d.sock);
  const tk = await c.sleep(60);
  const waiting = tk.result();
  waiting.catch(() => {}); // rejected before assert.rejects looks: not unhandled
  await sleep(100);
  await stopDaemon(d, true);
  await assert.rejects(waiting, corod.ConnectionLost);
  await assert.rejects(c.hello(), corod.ConnectionLost);
  // the task is still there after a restart: a sleep goes on towards its deadline
  const d2 = await startDaemon(d.dir);
  const c2 = await corod.Client.connect(d2.sock);
  assert.strictEqual((await c2.get(tk.id)).state, 'running');
  await c2.cancel(tk.id);
  c2.close();
  assert.strictEqual(await stopDaemon(d2), 0);
});
