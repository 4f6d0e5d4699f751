'use strict';
// corod: a Node.js client for the corod task daemon, over its Unix socket (MessagePack-RPC,
// proto/PROTOCOL.md). One connection, pipelined: any number of requests in flight, their
// answers matched by msgid. A task handle's result() is a promise that resolves from
// `task.done` pushes (a handle is deliberately not a thenable: `await client.submit()`
// gives the handle, not the end of the task); handles and the client are EventEmitters
// ('done' on a handle; 'task.done' on the client for each task it watches that ends,
// 'close' when the connection goes).
const net = require('net');
const path = require('path');
const { EventEmitter } = require('events');
const { Encoder, decodeMultiStream } = require('@msgpack/msgpack');

const SYSTEM_SOCKET = '/run/corod/corod.sock';
const SPEC_FIELDS = ['name', 'group', 'priority', 'after', 'delay', 'timeout', 'retries', 'retry_delay', 'shield'];
const EXEC_FIELDS = ['env', 'cwd', 'stdin', 'stdin_pipe', 'grace', 'output_limit', 'umask', 'rlimits',
  'memory_max', 'pids_max', 'cpu_weight', 'cpu_quota', 'slurm'];

// ---- errors: one class per code ----

class CorodError extends Error {
  constructor(message, code = 'error', details = {}) {
    super(message);
    this.name = this.constructor.name;
    this.code = code;
    this.details = details;
  }
}
const CODES = {
  bad_request: 'BadRequest', unknown_method: 'UnknownMethod', not_found: 'NotFound',
  permission_denied: 'PermissionDenied', too_large: 'TooLarge', quota_exceeded: 'QuotaExceeded',
  invalid_state: 'InvalidState', shutting_down: 'ShuttingDown', internal: 'Internal', unavailable: 'Unavailable',
};
const errors = { CorodError };
for (const [code, name] of Object.entries(CODES)) {
  errors[name] = { [name]: class extends CorodError { constructor(m, d) { super(m, code, d); } } }[name];
}
// The connection closed with requests unanswered: connect again (tasks survive a restart).
class ConnectionLost extends CorodError { constructor(m) { super(m, 'connection_lost'); } }
// An awaited task ended failed (TaskCancelled: cancelled): code and message are its error's.
class TaskFailed extends CorodError {
  constructor(record) {
    const e = record.error || {};
    super(e.message || record.state, e.code || record.state, e);
    this.record = record;
  }
}
class TaskCancelled extends TaskFailed {}
Object.assign(errors, { ConnectionLost, TaskFailed, TaskCancelled });

function fromWire(err) {
  if (!err || typeof err !== 'object') return new CorodError(String(err));
  const { code = 'error', message = '', ...details } = err;
  const cls = errors[CODES[code]];
  return cls ? new cls(message, details) : new CorodError(message, code, details);
}

// ---- integers: numbers while exact, BigInt beyond 2^53 ----

// The decoder gives 64-bit integers as BigInt; those a double holds exactly become numbers,
// so ids are numbers as far as 2^53 and BigInt past it (never rounded).
function exactInts(v) {
  if (typeof v === 'bigint') return v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  if (Array.isArray(v)) { for (let i = 0; i < v.length; i++) v[i] = exactInts(v[i]); return v; }
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) { for (const k of Object.keys(v)) v[k] = exactInts(v[k]); }
  return v;
}

// ... and going out, integers past 32 bits as BigInt: the encoder (with BigInt on) would
// send such a number as a float, which no id field takes. Copies only what must change.
const bigInt = (v) => Number.isInteger(v) && (v >= 2 ** 32 || v < -(2 ** 31));
function needsWire(v) {
  if (typeof v === 'number') return bigInt(v);
  if (Array.isArray(v)) return v.some(needsWire);
  if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
    for (const k in v) if (needsWire(v[k])) return true;
  }
  return false;
}
function wireInts(v) {
  if (!needsWire(v)) return v;
  if (typeof v === 'number') return BigInt(v);
  if (Array.isArray(v)) return v.map(wireInts);
  const o = {};
  for (const k of Object.keys(v)) o[k] = wireInts(v[k]);
  return o;
}

function defaultSocket() {
  if (process.env.CORO_SOCKET) return process.env.CORO_SOCKET;
  if (process.getuid && process.getuid() === 0) return SYSTEM_SOCKET;
  if (!process.env.XDG_RUNTIME_DIR) {
    throw new Error(`no CORO_SOCKET and no XDG_RUNTIME_DIR: pass a socket path (the machine's daemon is ${SYSTEM_SOCKET})`);
  }
  return path.join(process.env.XDG_RUNTIME_DIR, 'corod', 'corod.sock');
}

const taskId = (t) => (typeof t === 'object' && t !== null ? t.id : t);

function spec(kind, args, opts = {}) {
  const s = { kind };
  if (args !== undefined) s.args = args;
  for (const [k, v] of Object.entries(opts)) {
    if (!SPEC_FIELDS.includes(k)) throw new TypeError(`unknown option ${k} (a spec takes ${SPEC_FIELDS.join(', ')})`);
    if (v !== undefined && v !== null) s[k] = k === 'after' ? v.map(taskId) : v;
  }
  return s;
}

function execSpec(argv, opts = {}) {
  if (!Array.isArray(argv) || argv.length === 0) throw new TypeError('argv is a non-empty array of strings');
  const args = { argv };
  const rest = {};
  for (const [k, v] of Object.entries(opts)) {
    if (EXEC_FIELDS.includes(k)) { if (v !== undefined && v !== null) args[k] = v; } else rest[k] = v;
  }
  return spec('exec', args, rest);
}

function clean(o) {
  const r = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null) r[k] = v;
  return r;
}

// ---- a task ----

class Task extends EventEmitter {
  constructor(client, id) {
    super();
    this.client = client;
    this.id = id;
    this.record = null;
    this._promise = null;
  }

  // Its result once it ends (a job's: {exit_code, duration, ...}); rejects with TaskFailed.
  result() {
    if (!this._promise) this._promise = this.client._watchTask(this);
    return this._promise;
  }

  // fn(task) once it has ended, whatever the outcome; also emitted as 'done'.
  onDone(fn) {
    this.once('done', fn);
    this.result().catch(() => {});
    if (this.record) queueMicrotask(() => this.emit('done', this));
    return this;
  }

  cancel(message) { return this.client.cancel(this, message); }
  get() { return this.client.get(this); }
}

// A batch's answers, into one promise: a Slot stands where a call's {resolve, reject} would.
class Batch {
  constructor(client, n, resolve, reject) {
    this.client = client;
    this.ids = new Array(n);
    this.left = n;
    this.ok = resolve;
    this.fail = reject;
  }
}
class Slot {
  constructor(batch, i) { this.batch = batch; this.i = i; }
  resolve(r) {
    const b = this.batch;
    b.ids[this.i] = r.id;
    if (--b.left === 0) b.ok(b.ids.map((id) => new Task(b.client, id)));
  }
  reject(e) { this.batch.fail(e); }
}

// ---- the client ----

class Client extends EventEmitter {
  constructor(socket) {
    super();
    this._sock = socket;
    this._msgid = 0;
    this._calls = new Map();
    this._subs = new Map();
    this._early = new Map(); // notes for a sub whose answer is not handled yet
    this._doneSub = null;
    this._waiting = new Map();
    this._closed = null;
    this._out = [];
    this._enc = new Encoder({ useBigInt64: true });
    this._readLoop();
  }

  // Connect (default: the socket coroctl uses).
  static connect(socketPath) {
    return new Promise((resolve, reject) => {
      const s = net.createConnection(socketPath || defaultSocket());
      s.once('connect', () => { s.removeListener('error', reject); resolve(new Client(s)); });
      s.once('error', reject);
    });
  }

  close() {
    this._lost(new ConnectionLost('the client closed the connection'));
    this._sock.destroy();
  }

  async _readLoop() {
    let why = new ConnectionLost('the daemon closed the connection (it stopped, or dropped this client)');
    this._sock.on('error', (e) => { why = new ConnectionLost(`the connection failed: ${e.message}`); });
    try {
      for await (const m of decodeMultiStream(this._sock, { useBigInt64: true })) this._handle(exactInts(m));
    } catch (e) {
      if (!this._closed) why = new ConnectionLost(`the connection failed: ${e.message}`);
    }
    this._lost(why);
  }

  _handle(m) {
    if (!Array.isArray(m)) return;
    if (m[0] === 1 && m.length === 4) {
      const c = this._calls.get(m[1]);
      if (!c) return;
      this._calls.delete(m[1]);
      if (m[2] !== null && m[2] !== undefined) c.reject(fromWire(m[2])); else c.resolve(m[3]);
    } else if (m[0] === 2 && m[1] === 'task.done') {
      for (const note of m[2] || []) {
        const h = this._subs.get(note.sub);
        if (h) h(note.task);
        else { // its subscribe's answer is read but not yet handled: keep it
          if (!this._early.has(note.sub)) this._early.set(note.sub, []);
          this._early.get(note.sub).push(note.task);
        }
      }
    }
  }

  _lost(why) {
    if (this._closed) return;
    this._closed = why;
    for (const c of this._calls.values()) c.reject(why);
    this._calls.clear();
    for (const tasks of this._waiting.values()) for (const t of tasks) t._reject(why);
    this._waiting.clear();
    this.emit('close', why);
  }

  // Send a request now; the promise gets its result (pipelining: send many, then await).
  request(method, params) {
    if (this._closed) return Promise.reject(this._closed);
    this._msgid = (this._msgid % 0xffffffff) + 1;
    const id = this._msgid;
    const p = new Promise((resolve, reject) => this._calls.set(id, { resolve, reject }));
    if (this._out.length === 0) queueMicrotask(() => this._flush());
    this._out.push(this._enc.encode([0, id, method, params === undefined ? [] : [wireInts(params)]]));
    return p;
  }

  _flush() {
    if (!this._out.length) return;
    const data = Buffer.concat(this._out);
    this._out = [];
    if (!this._closed) this._sock.write(data);
  }

  call(method, params) { return this.request(method, params); }

  // ---- tasks ----

  task(id) { return new Task(this, id); }
  async submit(s) { return new Task(this, (await this.call('submit', s)).id); }
  submitExec(argv, opts) { return this.submit(execSpec(argv, opts)); }
  sleep(seconds, result, opts) {
    return this.submit(spec('sleep', result === undefined ? { seconds } : { seconds, result }, opts));
  }
  gather(tasks, opts = {}) {
    const { return_exceptions: re, ...rest } = opts;
    return this.submit(spec('gather', re ? { ids: tasks.map(taskId), return_exceptions: true } : { ids: tasks.map(taskId) }, rest));
  }

  // Many specs, pipelined: their handles in order — one promise for the batch, not one
  // each. The first refusal rejects it (the others may have been accepted: list shows them).
  submitMany(specs) {
    if (this._closed) return Promise.reject(this._closed);
    if (!specs.length) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const batch = new Batch(this, specs.length, resolve, reject);
      for (let i = 0; i < specs.length; i++) {
        this._msgid = (this._msgid % 0xffffffff) + 1;
        this._calls.set(this._msgid, new Slot(batch, i));
        this._out.push(this._enc.encode([0, this._msgid, 'submit', [wireInts(specs[i])]]));
      }
      this._flush();
    });
  }

  // Every task of ours that ends is told on one subscription (all: true), made before the
  // first handle asks; a task that had ended is found by a wait with no timeout, asked once
  // that subscription is in place.
  _watchTask(t) {
    const p = new Promise((resolve, reject) => { t._resolve = resolve; t._reject = reject; });
    if (this._closed) { t._reject(this._closed); return p; }
    if (!this._waiting.has(t.id)) this._waiting.set(t.id, []);
    this._waiting.get(t.id).push(t);
    (async () => {
      if (!this._doneSub) {
        this._doneSub = this.call('subscribe', { all: true }).then((r) => { this._onSub(r.sub, (rec) => this._taskEnded(rec)); return r.sub; });
        this._doneSub.catch(() => { this._doneSub = null; });
      }
      await this._doneSub;
      const r = await this.call('wait', { ids: [t.id], timeout: 0 });
      for (const rec of r.done) this._taskEnded(rec);
    })().catch((e) => t._reject(e));
    return p;
  }

  _onSub(sub, handler) {
    this._subs.set(sub, handler);
    for (const rec of this._early.get(sub) || []) handler(rec);
    this._early.delete(sub);
  }

  _taskEnded(rec) {
    this.emit('task.done', rec);
    const tasks = this._waiting.get(rec.id);
    if (!tasks) return;
    this._waiting.delete(rec.id);
    for (const t of tasks) {
      t.record = rec;
      if (rec.state === 'succeeded') t._resolve(rec.result === undefined ? null : rec.result);
      else t._reject(rec.state === 'cancelled' ? new TaskCancelled(rec) : new TaskFailed(rec));
      t.emit('done', t);
    }
  }

  // ---- the methods ----

  hello(client = 'corod-node') { return this.call('hello', { client }); }
  async cancel(t, message) { return (await this.call('cancel', clean({ id: taskId(t), message }))).cancelled; }
  get(t) { return this.call('get', { id: taskId(t) }); }

  // Every record matching the filters, page after page.
  async *list(filters = {}) {
    let after;
    for (;;) {
      const page = await this.call('list', clean({ ...filters, after }));
      yield* page.tasks;
      after = page.next;
      if (!after) return;
    }
  }

  wait(tasks, opts = {}) { return this.call('wait', clean({ ids: tasks.map(taskId), mode: opts.mode, timeout: opts.timeout })); }

  // handler(record) for each of these tasks as it ends (null: every task of yours from now
  // on); the subscription's number, for unsubscribe.
  async subscribe(tasks, handler) {
    const sub = (await this.call('subscribe', tasks ? { ids: tasks.map(taskId) } : { all: true })).sub;
    this._onSub(sub, handler);
    return sub;
  }

  async unsubscribe(sub) {
    this._subs.delete(sub);
    await this.call('unsubscribe', { sub });
    this._early.delete(sub);
  }

  // Records as the tasks end: these, or every task of yours (root: everyone's).
  async *watch(tasks) {
    const queue = [];
    let wake = null;
    const prm = tasks ? { ids: tasks.map(taskId) } : { all: true };
    const sub = (await this.call('subscribe', prm)).sub;
    this._onSub(sub, (rec) => { queue.push(rec); if (wake) { wake(); wake = null; } });
    let left = tasks ? prm.ids.length : Infinity;
    const onClose = () => { if (wake) { wake(); wake = null; } };
    this.on('close', onClose);
    try {
      while (left > 0) {
        if (!queue.length) {
          if (this._closed) throw this._closed;
          await new Promise((r) => { wake = r; });
          continue;
        }
        left--;
        yield queue.shift();
      }
    } finally {
      this.removeListener('close', onClose);
      this._subs.delete(sub);
      if (!this._closed) await this.call('unsubscribe', { sub }).catch(() => {});
      this._early.delete(sub);
    }
  }

  output(t, opts = {}) {
    return this.call('output', clean({ id: taskId(t), stream: opts.stream, offset: opts.offset, max: opts.max, wait: opts.wait }));
  }

  // A job's output as it is written, to its end, without polling.
  async *follow(t, stream = 'stdout') {
    let offset = 0;
    for (;;) {
      const r = await this.output(t, { stream, offset, wait: 30 });
      if (r.data.length) yield Buffer.from(r.data);
      offset = r.next;
      if (r.eof) return;
    }
  }

  async send(t, data, eof = false) {
    return (await this.call('send', clean({ id: taskId(t), data: data && data.length ? data : undefined, eof: eof || undefined }))).written;
  }
  async signal(t, sig) { await this.call('signal', { id: taskId(t), signal: sig }); }
  edit(t, changes) { return this.call('edit', clean({ id: taskId(t), ...changes })); }
  async spec(t) { return (await this.call('spec', { id: taskId(t) })).spec; }
  async setGroup(name, settings = {}) { await this.call('set_group', clean({ name, ...settings })); }
  async removeGroup(name) { await this.call('remove_group', { name }); }
  async groups() { return (await this.call('groups')).groups; }
  async clean(filters = {}) {
    let removed = 0;
    let after;
    for (;;) {
      const r = await this.call('clean', clean({ ...filters, after }));
      removed += r.removed;
      after = r.next;
      if (!after) return removed;
    }
  }
  async restart(tasks, filters = {}) {
    const prm = clean(filters);
    if (tasks) prm.ids = tasks.map(taskId);
    const made = [];
    for (;;) {
      const r = await this.call('restart', prm);
      made.push(...r.ids.map((i) => new Task(this, i)));
      if (tasks || !r.next) return made;
      prm.after = r.next;
    }
  }
}

module.exports = { Client, Task, defaultSocket, SYSTEM_SOCKET, spec, execSpec, exactInts, wireInts, ...errors };
