#!/usr/bin/env node
'use strict';
/**
 * `npm run bench`: resumable uploads through the real gateway (built `dist/`, run as a child
 * process) next to the same bytes written by a bare node:http loopback server straight to disk,
 * with the same client and the same concurrency, in one run.
 *
 *   node bench/run.js [--quick] [--scenario large|medium|small|multipart[,…]] [--fsync on|off|both]
 *                     [--repeat N] [--digests]
 *
 * Scenarios (full size):
 *   large   one 1 GiB file in 8 MiB segments, one segment in flight
 *   medium  32 sessions × 32 MiB in 1 MiB segments, 4 segments in flight per session
 *   small   20,000 × 16 KiB segments over 64 sessions, one segment in flight per session
 *
 * Each scenario runs against both servers with `upload_fsync on` (the bare server fdatasyncs each
 * segment) and with `upload_fsync off` (the bare server does not). Every server run gets a fresh
 * child process (so its VmHWM is the peak RSS of that run) and a fresh directory under
 * os.tmpdir(), removed (and `sync`ed) before the next run. Each combination runs --repeat times
 * (default 3, 1 with --quick), bare and gateway in alternating order, and the median run is shown:
 * disk speed on shared or virtual machines drifts a lot from one run to the next.
 * --digests adds md5 and sha256 aggregate fields to the gateway (it then reads the file back).
 *
 * This is a benchmark, not a test: it exits non-zero only when an upload fails.
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
const RSS_TARGET_MB = 150;
const RATIO_TARGET = 0.8;
/** Extra node flags for the server children, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=prof". */
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

// ---------------------------------------------------------------------------------------------
// Bare baseline server (child process role): node:http, positional writes, nothing else.
// ---------------------------------------------------------------------------------------------

/** Writes a request body at absolute offsets of an open file, one positional writev per batch. */
class PositionalWriter extends Writable {
  constructor(fd, position, durable) {
    super({ highWaterMark: 256 * KiB }); // the gateway's SegmentWriter uses the same
    this.fd = fd;
    this.position = position;
    this.durable = durable;
    this.received = 0;
  }
  _write(chunk, _encoding, callback) {
    this._put([chunk], callback);
  }
  _writev(chunks, callback) {
    this._put(chunks.map((c) => c.chunk), callback);
  }
  _put(buffers, callback) {
    let length = 0;
    for (const b of buffers) length += b.length;
    this.received += length;
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

function runBareServer(port, storeDir, durable) {
  const dirs = new Set();
  const server = http.createServer({ requestTimeout: 0 }, (req, res) => {
    const fail = (status, message) => {
      req.resume();
      res.writeHead(status, { 'Content-Type': 'text/plain', Connection: 'close' });
      res.end(`${message}\n`);
    };
    if (req.method !== 'POST') return fail(405, 'POST only');
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
// Bench process: scenarios, client, children, report.
// ---------------------------------------------------------------------------------------------

function scenarios(quick) {
  const list = [
    { name: 'large', label: quick ? '128 MiB file, 8 MiB segments' : '1 GiB file, 8 MiB segments', sessions: 1, sessionBytes: quick ? 128 * MiB : GiB, segment: 8 * MiB, inFlight: 1 },
    { name: 'medium', label: quick ? '8 × 8 MiB, 1 MiB segments, 4 in flight each' : '32 × 32 MiB, 1 MiB segments, 4 in flight each', sessions: quick ? 8 : 32, sessionBytes: quick ? 8 * MiB : 32 * MiB, segment: MiB, inFlight: 4 },
    { name: 'small', label: quick ? '2,000 × 16 KiB over 64 sessions' : '20,000 × 16 KiB over 64 sessions', sessions: 64, totalSegments: quick ? 2000 : 20000, segment: 16 * KiB, inFlight: 1 },
  ];
  for (const s of list) {
    // Segments per session; `totalSegments` is spread as evenly as possible (20,000 / 64 = 312.5).
    s.plan = [];
    for (let i = 0; i < s.sessions; i++) {
      const count = s.totalSegments !== undefined
        ? Math.floor(s.totalSegments / s.sessions) + (i < s.totalSegments % s.sessions ? 1 : 0)
        : s.sessionBytes / s.segment;
      s.plan.push(count);
    }
    s.segments = s.plan.reduce((a, b) => a + b, 0);
    s.bytes = s.segments * s.segment;
  }
  return list;
}

function parseArgs(argv) {
  const opts = { quick: false, scenarios: null, fsync: ['on', 'off'], digests: false, repeat: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const eq = arg.indexOf('=');
      if (eq >= 0) return arg.slice(eq + 1);
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--quick') opts.quick = true;
    else if (arg === '--digests') opts.digests = true;
    else if (arg === '--repeat' || arg.startsWith('--repeat=')) {
      opts.repeat = Number(value());
      if (!Number.isInteger(opts.repeat) || opts.repeat < 1) throw new Error('--repeat takes a whole number ≥ 1');
    }
    else if (arg === '--scenario' || arg.startsWith('--scenario=')) opts.scenarios = value().split(',').filter(Boolean);
    else if (arg === '--fsync' || arg.startsWith('--fsync=')) {
      const v = value();
      if (!['on', 'off', 'both'].includes(v)) throw new Error('--fsync takes on, off or both');
      opts.fsync = v === 'both' ? ['on', 'off'] : [v];
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write('usage: node bench/run.js [--quick] [--scenario large|medium|small|multipart[,…]] [--fsync on|off|both] [--repeat N] [--digests]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  return opts;
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

/** Memory of a process in bytes: VmRSS now and VmHWM (peak) from /proc, else RSS from ps. */
function memoryOf(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
      return m ? Number(m[1]) * 1024 : 0;
    };
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    const ps = spawnSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' });
    const rss = Number(ps.stdout.trim()) * 1024 || 0;
    return { rss, hwm: 0 };
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

/** A child server process with its peak RSS sampled every 50 ms. */
class ServerProcess {
  constructor(args, env) {
    this.tail = [];
    this.child = spawn(process.execPath, [...NODE_ARGS, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk) => {
      this.tail.push(String(chunk));
      if (this.tail.length > 40) this.tail.shift();
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
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
  /** Marks the start of the measured work (after start-up). */
  startCpu() {
    this.cpuAtStart = cpuSecondsOf(this.child.pid);
  }
  /** CPU seconds used since startCpu(). */
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

const LIVE_CHILDREN = new Set();
const TEMP_DIRS = new Set();
process.on('exit', () => {
  for (const child of LIVE_CHILDREN) child.kill('SIGKILL');
  for (const dir of TEMP_DIRS) fs.rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130));

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

function gatewayConfig({ port, store, state, backendPort, fsync, digests }) {
  return [
    '# written by bench/run.js',
    `listen 127.0.0.1:${port};`,
    'client_max_body_size 16m;',
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
  ].join('\n');
}

/** One segment request; resolves with its status and latency (request start → response end). */
function sendSegment(agent, port, id, start, length, total, body) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/upload',
      agent,
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Disposition': 'attachment; filename="x.bin"',
        'X-Content-Range': `bytes ${start}-${start + length - 1}/${total}`,
        'Session-ID': id,
        'Content-Length': String(length),
      },
    });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - t0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Uploads every session of the scenario; each session keeps `inFlight` segments going. */
async function runLoad(scenario, port, block, runId) {
  const concurrency = scenario.sessions * scenario.inFlight;
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const latencies = new Float64Array(scenario.segments);
  let done = 0;
  const statuses = new Map();
  const failures = [];
  const ids = [];
  const t0 = performance.now();
  await Promise.all(scenario.plan.map(async (count, s) => {
    const id = `bench-${runId}-${scenario.name}-${s}`;
    const total = count * scenario.segment;
    ids.push({ id, total });
    let next = 0;
    const worker = async () => {
      while (next < count && failures.length === 0) {
        const start = next++ * scenario.segment;
        const { status, ms, body } = await sendSegment(agent, port, id, start, scenario.segment, total, slice(block, start, scenario.segment));
        latencies[done++] = ms;
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status !== 201 && status !== 200) failures.push(`${id} bytes ${start}-: ${status} ${body.trim()}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(scenario.inFlight, count) }, worker));
  }));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  const sorted = Array.from(latencies.subarray(0, done)).sort((a, b) => a - b);
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  return { seconds, segments: done, bytes: done * scenario.segment, p50: pct(50), p99: pct(99), statuses, failures, ids };
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
    const expected = Buffer.concat([slice(block, at, Math.min(length, BLOCK_SIZE - (at % BLOCK_SIZE))), slice(block, 0, Math.max(0, length - (BLOCK_SIZE - (at % BLOCK_SIZE))))]);
    if (!actual.equals(expected)) problems.push(`${id}: bytes at ${at} differ from what was sent`);
  }
  return problems;
}

function syncDisk() {
  spawnSync('sync', { stdio: 'ignore' });
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
  if (server === 'bare') {
    proc = new ServerProcess([__filename, '--bare-server', String(port), store, fsync]);
  } else {
    const configFile = path.join(dir, 'gateway.conf');
    fs.writeFileSync(configFile, gatewayConfig({ port, store, state, backendPort: backend.port, fsync, digests: opts.digests }));
    proc = new ServerProcess([path.join(ROOT, 'bin', 'upload-gateway.js'), '--config', configFile], { LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' });
  }
  const handoffsBefore = backend.handoffs;
  try {
    await waitForPort(port, proc.child, () => proc.output());
    proc.startCpu();
    const result = await runLoad(scenario, port, block, `${server}-${fsync}-${process.pid}`);
    result.handoffs = backend.handoffs - handoffsBefore;
    result.cpu = proc.cpu();
    result.peakRss = await proc.stop();
    if (result.failures.length === 0) {
      if (server === 'gateway' && result.handoffs !== scenario.sessions) result.failures.push(`${result.handoffs} hand-offs for ${scenario.sessions} sessions`);
      result.failures.push(...verifyFiles(store, result.ids, block));
    }
    if (result.failures.length > 0 && proc.output().trim()) result.failures.push(`server output:\n${proc.output().trim()}`);
    return result;
  } finally {
    await proc.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    TEMP_DIRS.delete(dir);
    // Start the next run with no dirty pages of this one still being written back.
    syncDisk();
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
  const proc = new ServerProcess([path.join(ROOT, 'bin', 'upload-gateway.js'), '--config', configFile], { LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' });
  const failures = [];
  const handoffsBefore = backend.handoffs;
  try {
    await waitForPort(port, proc.child, () => proc.output());
    const boundary = 'BenchBoundary7MA4YWxkTrZu0gW';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="description"\r\n\r\nbench\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const started = process.hrtime.bigint();
    const status = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}`, 'Content-Length': head.length + bytes + tail.length } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(res.statusCode === 200 ? 200 : `${res.statusCode} ${text.trim()}`));
      });
      req.on('error', reject);
      let sent = 0;
      const pump = () => {
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
      };
      pump();
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (status !== 200) failures.push(`status ${status}`);
    if (backend.handoffs - handoffsBefore !== 1) failures.push(`${backend.handoffs - handoffsBefore} hand-offs`);
    const peakRss = await proc.stop();
    if (failures.length > 0 && proc.output().trim()) failures.push(`server output:\n${proc.output().trim()}`);
    return { seconds, peakRss, failures };
  } finally {
    await proc.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    TEMP_DIRS.delete(dir);
    syncDisk();
  }
}

const pad = (value, width, left = false) => (left ? String(value).padEnd(width) : String(value).padStart(width));
const mb = (bytes) => bytes / 1e6;
const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

function row(cells) {
  const widths = [8, 6, 8, 7, 10, 8, 8, 11, 7, 9, 10];
  return cells.map((c, i) => pad(c, widths[i], i < 3)).join('  ');
}

async function main() {
  if (process.argv[2] === '--bare-server') {
    runBareServer(Number(process.argv[3]), process.argv[4], process.argv[5] === 'on');
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
  // `multipart` is measured apart: one big form, gateway only (memory, not a ratio).
  const withMultipart = !opts.scenarios || opts.scenarios.includes('multipart');
  if (opts.scenarios) opts.scenarios = opts.scenarios.filter((name) => name !== 'multipart');
  const selected = opts.scenarios ? opts.scenarios.map((name) => {
    const found = all.find((s) => s.name === name);
    if (!found) {
      process.stderr.write(`bench: unknown scenario ${name} (large, medium, small, multipart)\n`);
      process.exit(2);
    }
    return found;
  }) : all;

  const repeat = opts.repeat ?? (opts.quick ? 1 : 3);
  const cpus = os.cpus();
  console.log('upload gateway benchmark');
  console.log(`  node ${process.version} on ${os.platform()} ${os.release()} ${os.arch()}`);
  console.log(`  cpus: ${cpus.length} × ${cpus[0]?.model ?? 'unknown'}; memory ${fmt(os.totalmem() / GiB)} GiB`);
  console.log(`  files under ${os.tmpdir()}; client, hand-off backend and each server in separate processes on 127.0.0.1`);
  console.log(`  gateway: bin/upload-gateway.js, fields name, content_type, path, size${opts.digests ? ', md5, sha256' : ''}; bare: node:http + positional writev${opts.quick ? '\n  --quick: scaled-down sizes' : ''}`);
  console.log('  MB = 10^6 bytes; latency per segment request (send start → response end); peak RSS = server VmHWM;');
  console.log('  CPU ms/MB = server process CPU time (user + system, all threads) per MB uploaded, less sensitive to other load');
  console.log(`  load average at start: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const s of selected) console.log(`  ${pad(s.name, 7, true)} ${s.label}: ${s.segments} segments, ${fmt(s.bytes / MiB, 0)} MiB, ${s.sessions * s.inFlight} requests in flight`);
  console.log('');

  const block = makeBlock();
  const backend = await startBackend();
  const runs = [];
  let failed = false;
  for (const scenario of selected) {
    for (const fsync of opts.fsync) {
      for (let rep = 0; rep < repeat; rep++) {
        // Alternate the order (bare first, then gateway first, …) so drift in the disk's speed
        // does not always favour the same server.
        for (const server of rep % 2 === 0 ? ['bare', 'gateway'] : ['gateway', 'bare']) {
          process.stderr.write(`  … ${scenario.name} fsync ${fsync} ${server}${repeat > 1 ? ` (${rep + 1}/${repeat})` : ''}`);
          const r = await runOne(scenario, server, fsync, block, backend, opts);
          r.rate = mb(r.bytes) / r.seconds;
          process.stderr.write(` ${fmt(r.seconds, 1)} s, ${fmt(r.rate)} MB/s\n`);
          runs.push({ scenario, fsync, server, ...r });
          if (r.failures.length > 0) {
            failed = true;
            process.stderr.write(`    FAILED (${r.failures.length}):\n${r.failures.slice(0, 10).map((f) => `      ${f}`).join('\n')}\n`);
          }
        }
      }
    }
  }

  // Per scenario, fsync and server: the run with the median MB/s (its latencies too); peak RSS
  // is the highest of all its runs.
  const results = [];
  for (const scenario of selected) {
    for (const fsync of opts.fsync) {
      for (const server of ['bare', 'gateway']) {
        const mine = runs.filter((r) => r.scenario === scenario && r.fsync === fsync && r.server === server).sort((a, b) => a.rate - b.rate);
        if (mine.length === 0) continue;
        const median = mine[Math.floor((mine.length - 1) / 2)];
        results.push({ ...median, peakRss: Math.max(...mine.map((r) => r.peakRss)), min: mine[0].rate, max: mine[mine.length - 1].rate });
      }
    }
  }
  const find = (scenario, fsync, server) => results.find((r) => r.scenario === scenario && r.fsync === fsync && r.server === server);
  if (repeat > 1) console.log(`${repeat} runs each, in alternating order; MB/s, segments/s and latencies of the median run, "runs" = slowest–fastest MB/s, peak RSS = highest\n`);
  console.log(row(['scenario', 'fsync', 'server', 'MB/s', 'segments/s', 'p50 ms', 'p99 ms', 'peak RSS MB', 'gw/bare', 'CPU ms/MB', ...(repeat > 1 ? ['runs MB/s'] : [])]));
  for (const r of results) {
    const bare = find(r.scenario, r.fsync, 'bare');
    const ratio = r.server === 'gateway' && bare ? fmt(r.rate / bare.rate, 2) : '';
    console.log(row([r.scenario.name, r.fsync, r.server, fmt(r.rate), fmt(r.segments / r.seconds, 0), fmt(r.p50, 1), fmt(r.p99, 1), fmt(r.peakRss / 1e6, 0), ratio, fmt((r.cpu * 1000) / mb(r.bytes), 2), ...(repeat > 1 ? [`${fmt(r.min, 0)}–${fmt(r.max, 0)}`] : [])]));
  }
  console.log('');

  console.log(`load average at end: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  // Verdicts.
  for (const fsync of opts.fsync) {
    const gw = find(all[0], fsync, 'gateway');
    const bare = find(all[0], fsync, 'bare');
    if (!gw || !bare) continue;
    const ratio = gw.rate / bare.rate;
    console.log(`verdict: large segments (8 MiB), fsync ${fsync}: gateway/bare ${fmt(ratio, 2)} ${ratio >= RATIO_TARGET ? '≥' : '<'} ${RATIO_TARGET} → ${ratio >= RATIO_TARGET ? 'PASS' : 'FAIL'}`);
  }
  const gateways = results.filter((r) => r.server === 'gateway');
  if (gateways.length > 0) {
    const worst = gateways.reduce((a, b) => (b.peakRss > a.peakRss ? b : a));
    const peak = worst.peakRss / 1e6;
    const bare = find(worst.scenario, worst.fsync, 'bare');
    const context = bare ? `; bare server there: ${fmt(bare.peakRss / 1e6, 0)} MB` : '';
    console.log(`verdict: gateway peak RSS ${fmt(peak, 0)} MB (${worst.scenario.name}, fsync ${worst.fsync}${context}) ${peak < RSS_TARGET_MB ? '<' : '≥'} ${RSS_TARGET_MB} MB → ${peak < RSS_TARGET_MB ? 'PASS' : 'FAIL'}`);
  }
  if (opts.fsync.length === 2) {
    const gains = selected.map((s) => {
      const on = find(s, 'on', 'gateway');
      const off = find(s, 'off', 'gateway');
      return on && off ? `${s.name} ×${fmt(off.rate / on.rate, 2)} MB/s (p50 ${fmt(on.p50, 1)} → ${fmt(off.p50, 1)} ms)` : null;
    }).filter(Boolean);
    console.log(`upload_fsync off vs on (gateway): ${gains.join('; ')}`);
  }
  if (withMultipart) {
    const bytes = opts.quick ? 256 * MiB : 2 * GiB;
    process.stderr.write(`  … multipart ${fmt(bytes / GiB, 2)} GiB in one form\n`);
    const m = await runMultipart(bytes, block, backend);
    console.log(`multipart: one ${fmt(bytes / GiB, 2)} GiB file posted in one form: ${fmt(mb(bytes) / m.seconds)} MB/s, gateway peak RSS ${fmt(m.peakRss / 1e6, 0)} MB ${m.peakRss / 1e6 < RSS_TARGET_MB ? '<' : '≥'} ${RSS_TARGET_MB} MB → ${m.failures.length === 0 && m.peakRss / 1e6 < RSS_TARGET_MB ? 'PASS' : 'FAIL'}`);
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
