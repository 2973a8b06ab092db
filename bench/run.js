#!/usr/bin/env node
'use strict';
/**
 * `npm run bench`: resumable uploads through the real gateway (built `dist/`, a child process)
 * next to two baselines started by this same script, same client, same concurrency, one run:
 *
 *   discard  node:http, reads every body and drops it (no disk): the ceiling of Node itself;
 *   bare     node:http, writes each body with positional writev into the same file layout
 *            (fdatasync per segment with fsync on): "Node straight to disk", no session state.
 *
 *   node bench/run.js [--quick] [--scenario A,B,C,D,C-redis,multipart] [--fsync on|off|both]
 *                     [--repeat N] [--servers discard,bare,gateway] [--digests]
 *
 * Scenarios (full size; --quick scales them down):
 *   A        one 1 GiB file in 8 MiB segments, one in flight
 *   B        32 sessions × 32 MiB in 1 MiB segments, 4 in flight each (128 connections)
 *   C        64 sessions × 5 MiB in 16 KiB segments, one in flight each
 *   D        one 256 MiB file in 1 MiB segments sent in random order, 8 in flight
 *   C-redis  C with the session state in Redis (`upload_state_redis`, a redis-server started here)
 *
 * The client is a raw HTTP/1.1 client on net sockets (keep-alive, one request at a time per
 * connection): node:http costs the client more than the server it measures. Every server run is a
 * fresh process (its VmHWM is that run's peak RSS) in a fresh directory under os.tmpdir(). Each
 * combination runs --repeat times (default 3; 1 with --quick), servers in rotating order, and the
 * median run is shown. This is a benchmark, not a test: it exits non-zero only when an upload fails.
 * BENCH_NODE_ARGS adds node flags to the server children (e.g. "--cpu-prof --cpu-prof-dir=DIR").
 */
const http = require('node:http');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Writable } = require('node:stream');
const { spawn, spawnSync } = require('node:child_process');
const { performance } = require('node:perf_hooks');

const ROOT = path.resolve(__dirname, '..');
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const BLOCK_SIZE = 8 * MiB;
/** The issue's targets: gateway ÷ discard per scenario and fsync setting, and peak RSS. */
const TARGETS = {
  off: { A: 0.6, B: 0.6, C: 0.6, D: 0.6, 'C-redis': 0.3 },
  on: { A: 0.35, C: 0.3 },
};
const RSS_TARGET_MIB = 100;
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

// ---------------------------------------------------------------------------------------------
// Baseline servers (child process roles).
// ---------------------------------------------------------------------------------------------

/** Writes a request body at absolute offsets of an open file, one positional writev per batch. */
class PositionalWriter extends Writable {
  constructor(fd, position, durable) {
    super({ highWaterMark: 256 * KiB });
    this.fd = fd;
    this.position = position;
    this.durable = durable;
  }
  _write(chunk, _encoding, callback) {
    this._put([chunk], callback);
  }
  _writev(chunks, callback) {
    this._put(chunks.map((c) => c.chunk), callback);
  }
  _put(buffers, callback) {
    const loop = (pending) => {
      fs.writev(this.fd, pending, this.position, (err, written) => {
        if (err) return callback(err);
        this.position += written;
        const rest = dropBytes(pending, written);
        if (rest.length === 0) return callback();
        loop(rest);
      });
    };
    loop(buffers);
  }
  _final(callback) {
    if (!this.durable) return callback();
    fs.fdatasync(this.fd, (err) => callback(err));
  }
}

function dropBytes(buffers, count) {
  const rest = [];
  let skip = count;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    rest.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return rest;
}

function runBaselineServer(kind, port, storeDir, durable) {
  const dirs = new Set();
  const server = http.createServer({ requestTimeout: 0 }, (req, res) => {
    const fail = (status, message) => {
      req.resume();
      res.writeHead(status, { 'Content-Type': 'text/plain', Connection: 'close' });
      res.end(`${message}\n`);
    };
    if (req.method !== 'POST') return fail(405, 'POST only');
    if (kind === 'discard') {
      req.on('data', () => undefined);
      req.on('end', () => {
        res.writeHead(201, { 'Content-Length': '0' });
        res.end();
      });
      return;
    }
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(req.headers['x-content-range'] ?? ''));
    const id = String(req.headers['session-id'] ?? '');
    if (!range || !/^[A-Za-z0-9_-]{1,200}$/.test(id)) return fail(400, 'needs X-Content-Range and Session-ID');
    // Same layout as the gateway's `upload_store DIR 1`: <store>/<last char of id>/<id>.
    const dir = path.join(storeDir, id.slice(-1));
    if (!dirs.has(dir)) {
      fs.mkdirSync(dir, { recursive: true });
      dirs.add(dir);
    }
    fs.open(path.join(dir, id), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600, (err, fd) => {
      if (err) return fail(500, err.message);
      const writer = new PositionalWriter(fd, Number(range[1]), durable);
      let done = false;
      const finish = (error) => {
        if (done) return;
        done = true;
        fs.close(fd, () => {
          if (error) return fail(500, error.message);
          res.writeHead(201, { 'Content-Length': '0' });
          res.end();
        });
      };
      writer.on('error', finish);
      writer.on('finish', () => finish());
      req.on('aborted', () => finish(new Error('aborted')));
      req.pipe(writer);
    });
  });
  server.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

// ---------------------------------------------------------------------------------------------
// Scenarios and data.
// ---------------------------------------------------------------------------------------------

function scenarios(quick) {
  const q = (full, small) => (quick ? small : full);
  const list = [
    { name: 'A', label: `one ${q('1 GiB', '128 MiB')} file, 8 MiB segments, 1 in flight`, sessions: 1, sessionBytes: q(GiB, 128 * MiB), segment: 8 * MiB, inFlight: 1 },
    { name: 'B', label: `${q(32, 8)} × ${q(32, 8)} MiB, 1 MiB segments, 4 in flight each`, sessions: q(32, 8), sessionBytes: q(32, 8) * MiB, segment: MiB, inFlight: 4 },
    { name: 'C', label: `64 × ${q('5 MiB', '512 KiB')}, 16 KiB segments, 1 in flight each`, sessions: 64, sessionBytes: q(5 * MiB, 512 * KiB), segment: 16 * KiB, inFlight: 1 },
    { name: 'D', label: `one ${q(256, 64)} MiB file, 1 MiB segments in random order, 8 in flight`, sessions: 1, sessionBytes: q(256, 64) * MiB, segment: MiB, inFlight: 8, shuffle: true },
    { name: 'C-redis', label: `C with the session state in Redis`, sessions: 64, sessionBytes: q(5 * MiB, 512 * KiB), segment: 16 * KiB, inFlight: 1, redis: true },
  ];
  for (const s of list) {
    s.perSession = s.sessionBytes / s.segment;
    s.segments = s.sessions * s.perSession;
    s.bytes = s.sessions * s.sessionBytes;
  }
  return list;
}

/** A deterministic pseudo-random 8 MiB block (xorshift32); every segment is a slice of it. */
function makeBlock() {
  const block = Buffer.allocUnsafe(BLOCK_SIZE);
  const words = new Uint32Array(block.buffer, block.byteOffset, BLOCK_SIZE / 4);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return block;
}

/** Bytes S..S+len of every file: segment sizes divide the block size, so a slice never wraps. */
function slice(block, start, length) {
  const at = start % BLOCK_SIZE;
  return block.subarray(at, at + length);
}

/** A seeded shuffle (the same order for every server). */
function shuffled(count, seed) {
  const order = Array.from({ length: count }, (_, i) => i);
  let x = seed >>> 0 || 1;
  for (let i = count - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

// ---------------------------------------------------------------------------------------------
// The raw HTTP client.
// ---------------------------------------------------------------------------------------------

/** One keep-alive connection sending one request at a time, parsing only status and body length. */
class Connection {
  constructor(port) {
    this.port = port;
    this.socket = null;
    this.pending = null;
    this.buffer = Buffer.alloc(0);
  }

  connect() {
    this.buffer = Buffer.alloc(0);
    this.socket = net.connect(this.port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk) => this.onData(chunk));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => {
      this.socket = null;
      this.fail(new Error('connection closed before the answer'));
    });
  }

  request(head, body) {
    if (!this.socket) this.connect();
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.cork();
      this.socket.write(head);
      this.socket.write(body);
      this.socket.uncork();
    });
  }

  onData(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0 || !this.pending) return;
    const head = this.buffer.toString('latin1', 0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (this.buffer.length < end + 4 + length) return;
    const status = Number(head.slice(9, 12));
    const body = this.buffer.toString('utf8', end + 4, end + 4 + length);
    this.buffer = this.buffer.subarray(end + 4 + length);
    const close = /\r\nconnection: *close/i.test(head);
    const { resolve } = this.pending;
    this.pending = null;
    if (close) {
      this.socket.removeAllListeners('close');
      this.socket.destroy();
      this.socket = null;
    }
    resolve({ status, body });
  }

  fail(err) {
    if (!this.pending) return;
    const { reject } = this.pending;
    this.pending = null;
    reject(err);
  }

  close() {
    this.socket?.removeAllListeners('close');
    this.socket?.destroy();
  }
}

function segmentHead(id, start, length, total) {
  return Buffer.from(
    'POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n' +
      'Content-Disposition: attachment; filename="x.bin"\r\n' +
      `X-Content-Range: bytes ${start}-${start + length - 1}/${total}\r\nSession-ID: ${id}\r\nContent-Length: ${length}\r\n\r\n`,
    'latin1',
  );
}

/** Uploads every session of the scenario; each session keeps `inFlight` segments going. */
async function runLoad(scenario, port, block, runId) {
  const latencies = new Float64Array(scenario.segments);
  let done = 0;
  const failures = [];
  const ids = [];
  const connections = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: scenario.sessions }, async (_, s) => {
    const id = `bench-${runId}-${scenario.name}-${s}`;
    const total = scenario.sessionBytes;
    ids.push({ id, total });
    const order = scenario.shuffle ? shuffled(scenario.perSession, 0x5eed + s) : null;
    let next = 0;
    const worker = async () => {
      const connection = new Connection(port);
      connections.push(connection);
      while (next < scenario.perSession && failures.length === 0) {
        const k = next++;
        const start = (order ? order[k] : k) * scenario.segment;
        const t = performance.now();
        let answer;
        try {
          answer = await connection.request(segmentHead(id, start, scenario.segment, total), slice(block, start, scenario.segment));
        } catch (err) {
          failures.push(`${id} bytes ${start}-: ${err.message}`);
          break;
        }
        latencies[done++] = performance.now() - t;
        if (answer.status !== 201 && answer.status !== 200) failures.push(`${id} bytes ${start}-: ${answer.status} ${answer.body.trim()}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(scenario.inFlight, scenario.perSession) }, worker));
  }));
  const seconds = (performance.now() - t0) / 1000;
  for (const c of connections) c.close();
  const sorted = Array.from(latencies.subarray(0, done)).sort((a, b) => a - b);
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  return { seconds, segments: done, bytes: done * scenario.segment, p50: pct(50), p99: pct(99), failures, ids };
}

// ---------------------------------------------------------------------------------------------
// Processes.
// ---------------------------------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitForPort(port, child, output) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited before listening:\n${output()}`);
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`server did not listen on ${port} in time:\n${output()}`);
    await sleep(50);
  }
}

/** Memory of a process in bytes: VmRSS now and VmHWM (peak) from /proc. */
function memoryOf(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU seconds (user + system, all threads) a process has used so far; NaN where /proc is missing. */
function cpuSecondsOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime, stime
  } catch {
    return NaN;
  }
}

const LIVE_CHILDREN = new Set();
const TEMP_DIRS = new Set();
process.on('exit', () => {
  for (const child of LIVE_CHILDREN) child.kill('SIGKILL');
  for (const dir of TEMP_DIRS) fs.rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

/** A child process with its peak RSS sampled every 50 ms. */
class ServerProcess {
  constructor(bin, args, env) {
    this.tail = [];
    this.child = spawn(bin, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk) => {
      this.tail.push(String(chunk));
      if (this.tail.length > 40) this.tail.shift();
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.child.on('error', (err) => keep(`cannot start ${bin}: ${err.message}\n`));
    this.peak = 0;
    this.timer = setInterval(() => this.sample(), 50);
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
    LIVE_CHILDREN.add(this.child);
    this.child.once('exit', () => LIVE_CHILDREN.delete(this.child));
  }
  sample() {
    if (this.child.exitCode !== null) return;
    const { rss, hwm } = memoryOf(this.child.pid);
    this.peak = Math.max(this.peak, rss, hwm);
  }
  output() {
    return this.tail.join('');
  }
  startCpu() {
    this.cpuAtStart = cpuSecondsOf(this.child.pid);
  }
  cpu() {
    return cpuSecondsOf(this.child.pid) - this.cpuAtStart;
  }
  async stop() {
    this.sample();
    clearInterval(this.timer);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timeout = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timeout);
    }
    return this.peak;
  }
}

/** A redis-server for C-redis, like the compose file's (appendfsync always with fsync on). */
async function startRedis(dir, fsync) {
  const port = await freePort();
  const bin = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => fs.existsSync(p)) ?? 'redis-server';
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, ...(fsync === 'on' ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'])];
  const proc = new ServerProcess(bin, args, {});
  await waitForPort(port, proc.child, () => `${proc.output()}\n(C-redis needs redis-server: apt-get install -y redis-server)`);
  return { url: `redis://127.0.0.1:${port}/0`, proc };
}

/** The hand-off target: answers 200 and counts the hand-offs. */
function startBackend() {
  const backend = { handoffs: 0, port: 0, server: null };
  backend.server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      backend.handoffs++;
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('stored\n');
    });
  });
  return new Promise((resolve) => {
    backend.server.listen(0, '127.0.0.1', () => {
      backend.port = backend.server.address().port;
      resolve(backend);
    });
  });
}

function gatewayConfig({ port, store, state, backendPort, fsync, digests, redis }) {
  return [
    '# written by bench/run.js',
    `listen 127.0.0.1:${port};`,
    'client_max_body_size 16m;',
    ...(redis ? [`upload_state_redis ${redis};`] : []),
    '',
    'location = /upload {',
    `    upload_pass http://127.0.0.1:${backendPort}/uploaded;`,
    '    upload_resumable on;',
    `    upload_store ${store} 1;`,
    `    upload_state_store ${state};`,
    `    upload_fsync ${fsync};`,
    '    upload_set_form_field name "$upload_file_name";',
    '    upload_set_form_field content_type "$upload_content_type";',
    '    upload_set_form_field path "$upload_tmp_path";',
    '    upload_aggregate_form_field size "$upload_file_size";',
    ...(digests ? ['    upload_aggregate_form_field md5 "$upload_file_md5";', '    upload_aggregate_form_field sha256 "$upload_file_sha256";'] : []),
    '    upload_cleanup 400 404 499 500-505;',
    '}',
    '',
    '# As deployed (docker/gateway.conf): metrics on, so their cost is measured too.',
    'location = /metrics {',
    '    upload_metrics;',
    '}',
    '',
  ].join('\n');
}

/** Checks each uploaded file: its size, and a 64 KiB sample against the block. */
function verifyFiles(storeDir, ids, block) {
  const problems = [];
  for (const { id, total } of ids) {
    const file = path.join(storeDir, id.slice(-1), id);
    let size;
    try {
      size = fs.statSync(file).size;
    } catch (err) {
      problems.push(`${id}: ${err.code}`);
      continue;
    }
    if (size !== total) {
      problems.push(`${id}: ${size} bytes on disk, ${total} sent`);
      continue;
    }
    const length = Math.min(64 * KiB, total);
    const at = Math.floor((total - length) / 2 / 4096) * 4096;
    const actual = Buffer.alloc(length);
    const fd = fs.openSync(file, 'r');
    fs.readSync(fd, actual, 0, length, at);
    fs.closeSync(fd);
    const expected = Buffer.alloc(length);
    for (let k = 0; k < length; k++) expected[k] = block[(at + k) % BLOCK_SIZE];
    if (!actual.equals(expected)) problems.push(`${id}: bytes at ${at} differ from what was sent`);
  }
  return problems;
}

/** One scenario against one server with one fsync setting, in a fresh process and directory. */
async function runOne(scenario, server, fsync, block, backend, opts) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `upload-bench-${server}-`));
  TEMP_DIRS.add(dir);
  const store = path.join(dir, 'store');
  const state = path.join(dir, 'state');
  fs.mkdirSync(store);
  fs.mkdirSync(state);
  const port = await freePort();
  let proc;
  let redis = null;
  if (server !== 'gateway') {
    proc = new ServerProcess(process.execPath, [...NODE_ARGS, __filename, '--baseline-server', server, String(port), store, fsync]);
  } else {
    if (scenario.redis) redis = await startRedis(dir, fsync);
    const configFile = path.join(dir, 'gateway.conf');
    fs.writeFileSync(configFile, gatewayConfig({ port, store, state, backendPort: backend.port, fsync, digests: opts.digests, redis: redis?.url }));
    proc = new ServerProcess(process.execPath, [...NODE_ARGS, path.join(ROOT, 'bin', 'upload-gateway.js'), '--config', configFile], { LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' });
  }
  const handoffsBefore = backend.handoffs;
  try {
    await waitForPort(port, proc.child, () => proc.output());
    proc.startCpu();
    const result = await runLoad(scenario, port, block, `${server}-${fsync}-${process.pid}-${Date.now()}`);
    result.handoffs = backend.handoffs - handoffsBefore;
    result.cpu = proc.cpu();
    result.peakRss = await proc.stop();
    if (result.failures.length === 0 && server !== 'discard') {
      if (server === 'gateway' && result.handoffs !== scenario.sessions) result.failures.push(`${result.handoffs} hand-offs for ${scenario.sessions} sessions`);
      result.failures.push(...verifyFiles(store, result.ids, block));
    }
    if (result.failures.length > 0 && proc.output().trim()) result.failures.push(`server output:\n${proc.output().trim()}`);
    return result;
  } finally {
    await proc.stop();
    await redis?.proc.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    TEMP_DIRS.delete(dir);
    // Start the next run with no dirty pages of this one still being written back.
    spawnSync('sync', { stdio: 'ignore' });
    await sleep(300);
  }
}

/** One multipart/form-data POST of `bytes` file bytes (plus a text field) to the gateway, streamed. */
async function runMultipart(bytes, block, backend) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'upload-bench-multipart-'));
  TEMP_DIRS.add(dir);
  const store = path.join(dir, 'store');
  const state = path.join(dir, 'state');
  fs.mkdirSync(store);
  fs.mkdirSync(state);
  const port = await freePort();
  const configFile = path.join(dir, 'gateway.conf');
  fs.writeFileSync(configFile, gatewayConfig({ port, store, state, backendPort: backend.port, fsync: 'on', digests: true }).replace('client_max_body_size 16m;', 'client_max_body_size 0;'));
  const proc = new ServerProcess(process.execPath, [...NODE_ARGS, path.join(ROOT, 'bin', 'upload-gateway.js'), '--config', configFile], { LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' });
  const failures = [];
  const handoffsBefore = backend.handoffs;
  try {
    await waitForPort(port, proc.child, () => proc.output());
    const boundary = 'BenchBoundary7MA4YWxkTrZu0gW';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nbench\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const started = performance.now();
    const status = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': head.length + bytes + tail.length } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(res.statusCode === 200 ? 200 : `${res.statusCode} ${text.trim()}`));
      });
      req.on('error', reject);
      let sent = 0;
      req.write(head);
      const more = () => {
        while (sent < bytes) {
          const length = Math.min(block.length, bytes - sent);
          sent += length;
          if (!req.write(length === block.length ? block : block.subarray(0, length))) return req.once('drain', more);
        }
        req.end(tail);
      };
      more();
    });
    const seconds = (performance.now() - started) / 1000;
    if (status !== 200) failures.push(`status ${status}`);
    if (backend.handoffs - handoffsBefore !== 1) failures.push(`${backend.handoffs - handoffsBefore} hand-offs`);
    const peakRss = await proc.stop();
    if (failures.length > 0 && proc.output().trim()) failures.push(`server output:\n${proc.output().trim()}`);
    return { seconds, peakRss, failures };
  } finally {
    await proc.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    TEMP_DIRS.delete(dir);
    spawnSync('sync', { stdio: 'ignore' });
  }
}

// ---------------------------------------------------------------------------------------------
// Report.
// ---------------------------------------------------------------------------------------------

function parseArgs(argv) {
  const { parseArgs: parse } = require('node:util');
  const { values } = parse({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      digests: { type: 'boolean', default: false },
      scenario: { type: 'string' },
      fsync: { type: 'string', default: 'both' },
      repeat: { type: 'string' },
      servers: { type: 'string', default: 'discard,bare,gateway' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write('usage: node bench/run.js [--quick] [--scenario A,B,C,D,C-redis,multipart] [--fsync on|off|both] [--repeat N] [--servers discard,bare,gateway] [--digests]\n');
    process.exit(0);
  }
  if (!['on', 'off', 'both'].includes(values.fsync)) throw new Error('--fsync takes on, off or both');
  const repeat = values.repeat === undefined ? null : Number(values.repeat);
  if (repeat !== null && (!Number.isInteger(repeat) || repeat < 1)) throw new Error('--repeat takes a whole number ≥ 1');
  const servers = values.servers.split(',').filter(Boolean);
  for (const s of servers) if (!['discard', 'bare', 'gateway'].includes(s)) throw new Error(`unknown server ${s}`);
  return {
    quick: values.quick,
    digests: values.digests,
    scenarios: values.scenario ? values.scenario.split(',').filter(Boolean) : null,
    fsync: values.fsync === 'both' ? ['off', 'on'] : [values.fsync],
    repeat,
    servers,
  };
}

const pad = (value, width, left = false) => (left ? String(value).padEnd(width) : String(value).padStart(width));
const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

function row(cells) {
  const widths = [8, 5, 8, 8, 10, 9, 8, 8, 9, 10, 7, 9];
  return cells.map((c, i) => pad(c, widths[i], i < 3)).join('  ');
}

async function main() {
  if (process.argv[2] === '--baseline-server') {
    runBaselineServer(process.argv[3], Number(process.argv[4]), process.argv[5], process.argv[6] === 'on');
    return;
  }
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${err.message}\n`);
    process.exit(2);
  }
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli.js'))) {
    process.stderr.write('bench: dist/ is missing; run `npm run bench` (it builds first) or `npm run build`\n');
    process.exit(2);
  }
  const all = scenarios(opts.quick);
  const withMultipart = !opts.scenarios || opts.scenarios.includes('multipart');
  const names = opts.scenarios ? opts.scenarios.filter((n) => n !== 'multipart') : all.map((s) => s.name);
  const selected = names.map((name) => {
    const found = all.find((s) => s.name === name);
    if (!found) {
      process.stderr.write(`bench: unknown scenario ${name} (A, B, C, D, C-redis, multipart)\n`);
      process.exit(2);
    }
    return found;
  });

  const repeat = opts.repeat ?? (opts.quick ? 1 : 3);
  const cpus = os.cpus();
  console.log('upload gateway benchmark');
  console.log(`  node ${process.version} on ${os.platform()} ${os.release()} ${os.arch()}; ${cpus.length} × ${cpus[0]?.model ?? 'unknown'}; memory ${fmt(os.totalmem() / GiB)} GiB`);
  console.log(`  files under ${os.tmpdir()}; the client (raw HTTP/1.1 on keep-alive sockets), the hand-off backend and each server are separate processes on 127.0.0.1`);
  console.log(`  servers: discard (node:http, drops bodies), bare (node:http + positional writev, fdatasync with fsync on), gateway (bin/upload-gateway.js${opts.digests ? ', md5 + sha256' : ''})${opts.quick ? '\n  --quick: scaled-down sizes' : ''}`);
  console.log('  MiB/s = 2^20 bytes/s; latency per segment request; peak RSS = server VmHWM; CPU µs/seg = server CPU (user + system, all threads) per segment');
  console.log(`  load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const s of selected) console.log(`  ${pad(s.name, 8, true)} ${s.label}: ${s.segments} segments, ${fmt(s.bytes / MiB, 0)} MiB, ${s.sessions * s.inFlight} connections`);
  console.log('');

  const block = makeBlock();
  const backend = await startBackend();
  const runs = [];
  let failed = false;
  for (const scenario of selected) {
    for (const fsync of opts.fsync) {
      for (let rep = 0; rep < repeat; rep++) {
        // Rotate the order so drift in the machine's speed does not always favour the same server.
        const order = opts.servers.map((_, i) => opts.servers[(i + rep) % opts.servers.length]);
        for (const server of order) {
          process.stderr.write(`  … ${scenario.name} fsync ${fsync} ${server}${repeat > 1 ? ` (${rep + 1}/${repeat})` : ''}`);
          const r = await runOne(scenario, server, fsync, block, backend, opts);
          r.rate = r.bytes / MiB / r.seconds;
          process.stderr.write(` ${fmt(r.seconds, 1)} s, ${fmt(r.rate)} MiB/s\n`);
          runs.push({ scenario, fsync, server, ...r });
          if (r.failures.length > 0) {
            failed = true;
            process.stderr.write(`    FAILED (${r.failures.length}):\n${r.failures.slice(0, 10).map((f) => `      ${f}`).join('\n')}\n`);
          }
        }
      }
    }
  }

  // Per scenario, fsync and server: the median run (MiB/s, latencies, CPU); peak RSS the highest.
  const results = [];
  for (const scenario of selected) {
    for (const fsync of opts.fsync) {
      for (const server of opts.servers) {
        const mine = runs.filter((r) => r.scenario === scenario && r.fsync === fsync && r.server === server).sort((a, b) => a.rate - b.rate);
        if (mine.length === 0) continue;
        const median = mine[Math.floor((mine.length - 1) / 2)];
        results.push({ ...median, peakRss: Math.max(...mine.map((r) => r.peakRss)), min: mine[0].rate, max: mine[mine.length - 1].rate });
      }
    }
  }
  const find = (scenario, fsync, server) => results.find((r) => r.scenario === scenario && r.fsync === fsync && r.server === server);
  if (repeat > 1) console.log(`${repeat} runs each, servers in rotating order; the median run is shown, "runs" = slowest–fastest MiB/s, peak RSS = highest\n`);
  console.log(row(['scenario', 'fsync', 'server', 'MiB/s', 'segments/s', 'CPU µs/seg', 'p50 ms', 'p99 ms', 'peak MiB', '÷ discard', '÷ bare', ...(repeat > 1 ? ['runs'] : [])]));
  for (const r of results) {
    const discard = find(r.scenario, r.fsync, 'discard');
    const bare = find(r.scenario, r.fsync, 'bare');
    const ratio = r.server !== 'discard' && discard ? fmt(r.rate / discard.rate, 2) : '';
    const toBare = r.server === 'gateway' && bare ? fmt(r.rate / bare.rate, 2) : '';
    console.log(row([r.scenario.name, r.fsync, r.server, fmt(r.rate), fmt(r.segments / r.seconds, 0), fmt((r.cpu * 1e6) / r.segments, 0), fmt(r.p50, 1), fmt(r.p99, 1), fmt(r.peakRss / MiB, 0), ratio, toBare, ...(repeat > 1 ? [`${fmt(r.min, 0)}–${fmt(r.max, 0)}`] : [])]));
  }
  console.log(`\nload average at end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);

  // Verdicts against the targets.
  for (const fsync of opts.fsync) {
    for (const scenario of selected) {
      const target = TARGETS[fsync][scenario.name];
      const gw = find(scenario, fsync, 'gateway');
      const discard = find(scenario, fsync, 'discard');
      if (target === undefined || !gw || !discard) continue;
      const ratio = gw.rate / discard.rate;
      console.log(`verdict: ${pad(scenario.name, 7, true)} fsync ${pad(fsync, 3, true)} gateway ÷ discard ${fmt(ratio, 2)} ${ratio >= target ? '≥' : '<'} ${target} → ${ratio >= target ? 'PASS' : 'MISS'}`);
    }
  }
  const gateways = results.filter((r) => r.server === 'gateway');
  if (gateways.length > 0) {
    const worst = gateways.reduce((a, b) => (b.peakRss > a.peakRss ? b : a));
    const peak = worst.peakRss / MiB;
    const discard = find(worst.scenario, worst.fsync, 'discard');
    console.log(`verdict: gateway peak RSS ${fmt(peak, 0)} MiB (${worst.scenario.name}, fsync ${worst.fsync}${discard ? `; discard there ${fmt(discard.peakRss / MiB, 0)} MiB` : ''}) ${peak <= RSS_TARGET_MIB ? '≤' : '>'} ${RSS_TARGET_MIB} MiB → ${peak <= RSS_TARGET_MIB ? 'PASS' : 'MISS'}`);
  }
  if (withMultipart && opts.servers.includes('gateway')) {
    const bytes = opts.quick ? 256 * MiB : 2 * GiB;
    process.stderr.write(`  … multipart ${fmt(bytes / GiB, 2)} GiB in one form\n`);
    const m = await runMultipart(bytes, block, backend);
    console.log(`multipart: one ${fmt(bytes / GiB, 2)} GiB file in one form (md5, sha256): ${fmt(bytes / MiB / m.seconds)} MiB/s, gateway peak RSS ${fmt(m.peakRss / MiB, 0)} MiB ${m.peakRss / MiB <= RSS_TARGET_MIB ? '≤' : '>'} ${RSS_TARGET_MIB} MiB → ${m.failures.length === 0 && m.peakRss / MiB <= RSS_TARGET_MIB ? 'PASS' : 'MISS'}`);
    if (m.failures.length > 0) {
      console.log(`multipart FAILED: ${m.failures.join('; ')}`);
      failed = true;
    }
  }
  backend.server.close();
  if (failed) {
    console.log('some uploads FAILED (see above); figures of failed runs are not meaningful');
    process.exitCode = 1;
  }
}

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack ?? err}\n`);
  process.exit(1);
});
