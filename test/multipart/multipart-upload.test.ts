/**
 * multipart/form-data mode end to end: an in-process gateway, a capture backend, real sockets and
 * real files (spec §4–§6, §8, D1, D2, D5, D11, D14–D16).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { digest, fileMode, header, multipartBody, post, rawRequest, requestBytes, startEnv, storeFiles, waitFor, type Env } from './harness';

const CD = (name: string, fileName?: string) => `Content-Disposition: form-data; name="${name}"${fileName === undefined ? '' : `; filename="${fileName}"`}`;

function crc32(data: Buffer): string {
  return (zlib.crc32(data) >>> 0).toString(16).padStart(8, '0');
}

describe('multipart uploads: files, fields, hashes', () => {
  let env: Env;
  beforeAll(async () => {
    env = await startEnv(
      `upload_store_access user:rw group:r;
       upload_pass_form_field "^description$";
       upload_pass_form_field "^sub";
       upload_add_header X-Part "p-$upload_file_number";
       upload_add_header X-File $upload_file_name;`,
      { aggregates: ['md5 $upload_file_md5', 'sha1 $upload_file_sha1', 'sha256 $upload_file_sha256', 'sha512 $upload_file_sha512', 'crc32 $upload_file_crc32', 'MD5 $upload_file_md5_uc', 'size $upload_file_size', 'arange $upload_content_range'] },
    );
  });
  afterAll(() => env.close());

  test('several files and passed/dropped fields: the module layout, hashes equal to node:crypto', async () => {
    const big = randomBytes(300_000);
    const small = Buffer.from('hello\n');
    const body = multipartBody('XyZ', [
      { headers: [CD('description')], data: 'My holiday' },
      { headers: [CD('photo', 'C:\\Pics\\beach.jpg'), 'Content-Type: image/jpeg'], data: big },
      { headers: [CD('secret')], data: 'dropped' },
      { headers: [CD('notes', 'a/b/notes.txt'), 'Content-Type: text/plain; charset=utf-8'], data: small },
      { headers: [CD('submit')], data: 'Up\r\nload\r\n--XyY\n--Xy' },
      { headers: ['X-Whatever: 1'], data: 'no disposition: dropped' },
    ]);
    const res = await post(env.port, '/up?id=5', 'XyZ', body, [['X-Client', 'c']]);
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('backend 200\n');
    // upload_add_header: evaluated at the start of every part, added before the backend's headers (§8).
    expect(header(res, 'X-Part')).toEqual(['p-0', 'p-1', 'p-1', 'p-2', 'p-2', 'p-2']);
    expect(header(res, 'X-File')).toEqual(['beach.jpg', 'notes.txt']);
    const names = res.headers.map(([n]) => n.toLowerCase());
    expect(names.indexOf('x-part')).toBeLessThan(names.indexOf('x-capture-id'));

    expect(env.backend.calls).toHaveLength(1);
    const call = env.backend.calls[0];
    expect(call.method).toBe('POST');
    expect(call.url).toBe('/up?id=5');
    expect(call.rawHeaders).toEqual(['Host', `127.0.0.1:${env.backend.port}`, 'Connection', 'close', 'Content-Length', String(call.body.length), 'Content-Type', 'multipart/form-data; boundary=XyZ', 'X-Client', 'c']);

    const files = storeFiles(env.store);
    expect(files).toHaveLength(2);
    for (const f of files) expect(f).toMatch(/^(\d)\/\d{9}\1$/);
    const [bigPath, smallPath] = call.fields.filter(([n]) => n.endsWith('.path')).map(([, v]) => v);
    expect(path.basename(bigPath)).toMatch(/^\d{10}$/);
    expect(readFileSync(bigPath).equals(big)).toBe(true);
    expect(readFileSync(smallPath).equals(small)).toBe(true);
    expect(fileMode(bigPath)).toBe(0o640);
    const hashes = (prefix: string, data: Buffer, number: number, name: string, type: string, p: string): Array<[string, string]> => [
      [`${prefix}.name`, name], [`${prefix}.content_type`, type], [`${prefix}.path`, p], [`${prefix}.field`, prefix],
      [`${prefix}.range`, 'bytes 0-0/0'], [`${prefix}.number`, String(number)],
      [`${prefix}.md5`, digest('md5', data)], [`${prefix}.sha1`, digest('sha1', data)], [`${prefix}.sha256`, digest('sha256', data)],
      [`${prefix}.sha512`, digest('sha512', data)], [`${prefix}.crc32`, crc32(data)], [`${prefix}.MD5`, digest('md5', data).toUpperCase()],
      [`${prefix}.size`, String(data.length)], [`${prefix}.arange`, `bytes 0-${data.length}/${data.length}`],
    ];
    expect(call.fields).toEqual([
      ['description', 'My holiday'],
      ...hashes('photo', big, 1, 'beach.jpg', 'image/jpeg', bigPath),
      ...hashes('notes', small, 2, 'notes.txt', 'text/plain; charset=utf-8', smallPath),
      ['submit', 'Up\r\nload\r\n--XyY\n--Xy'],
    ]);
    expect(call.body.toString('latin1').startsWith('--XyZ\r\nContent-Disposition: form-data; name="description"\r\n\r\nMy holiday\r\n--XyZ\r\n')).toBe(true);
  });

  test('the exact body of the spec example (§11.3 shape), passed field first', async () => {
    env.backend.calls.length = 0;
    const res = await post(env.port, '/up', 'B', multipartBody('B', [{ headers: [CD('description')], data: '' }]));
    expect(res.status).toBe(200);
    expect(env.backend.calls[0].body.toString('latin1')).toBe('--B\r\nContent-Disposition: form-data; name="description"\r\n\r\n\r\n--B--\r\n');
  });

  test('only dropped fields: the dummy field', async () => {
    env.backend.calls.length = 0;
    const res = await post(env.port, '/up', 'dum', multipartBody('dum', [{ headers: [CD('a')], data: '1' }, { headers: [CD('b', '')], data: '2' }]));
    expect(res.status).toBe(200);
    expect(env.backend.calls[0].body.toString('latin1')).toBe('--dum\r\nContent-Disposition: form-data; name="<ngx_upload_module_dummy>"\r\n\r\n\r\n--dum--\r\n');
  });

  test('a large file streamed in many small writes keeps its bytes and hashes', async () => {
    env.backend.calls.length = 0;
    const data = randomBytes(5 * 1024 * 1024 + 17);
    // Put delimiter look-alikes right at write boundaries.
    Buffer.from('\r\n--Bx').copy(data, 65536 - 2);
    Buffer.from('\n--Bx').copy(data, 131072 - 1);
    const body = multipartBody('BB', [{ headers: [CD('f', 'big.bin')], data }]);
    const head = requestBytes('/up', [['Content-Type', 'multipart/form-data; boundary=BB']], Buffer.alloc(0), { contentLength: body.length });
    const socket = net.connect(env.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => undefined);
    const closed = new Promise((r) => socket.on('close', r));
    socket.write(head);
    for (let at = 0; at < body.length && !socket.destroyed; at += 7919) {
      if (!socket.write(body.subarray(at, at + 7919))) await Promise.race([new Promise((r) => socket.once('drain', r)), closed]);
    }
    await closed;
    expect(Buffer.concat(chunks).toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    const fields = new Map(env.backend.calls[0].fields);
    expect(fields.get('f.md5')).toBe(digest('md5', data));
    expect(fields.get('f.sha256')).toBe(digest('sha256', data));
    expect(fields.get('f.crc32')).toBe(crc32(data));
    expect(readFileSync(fields.get('f.path')!).equals(data)).toBe(true);
  });
});

describe('multipart uploads: parser behaviours the corpus checks', () => {
  let env: Env;
  beforeAll(async () => {
    env = await startEnv('upload_pass_form_field "^(lc|f)$"; upload_max_part_header_len 64; upload_cleanup 400 500-505;');
  });
  afterAll(() => env.close());
  let before: string[];
  beforeEach(() => {
    env.backend.calls.length = 0;
    before = storeFiles(env.store);
  });

  test('bare-LF body, preamble and epilogue', async () => {
    const res = await post(env.port, '/up', 'lf', 'preamble\n--lf\nContent-Disposition: form-data; name="file"; filename="lf.txt"\nContent-Type: text/plain\n\nline1\nline2\n--lf--\nepilogue');
    expect(res.status).toBe(200);
    const fields = new Map(env.backend.calls[0].fields);
    expect(readFileSync(fields.get('file.path')!, 'latin1')).toBe('line1\nline2');
    expect(fields.get('file.content_type')).toBe('text/plain');
  });

  test('quoted boundary is unquoted for parsing, forwarded unchanged; compact lower-case disposition', async () => {
    const res = await post(env.port, '/up', '"QQ"', '--QQ\r\ncontent-disposition:form-data;name="lc"\r\n\r\nv\r\n--QQ--\r\n');
    expect(res.status).toBe(200);
    expect(env.backend.calls[0].fields).toEqual([['lc', 'v']]);
    expect(env.backend.calls[0].rawHeaders).toContain('multipart/form-data; boundary="QQ"');
  });

  test('Session-ID and X-Content-Range are ignored in multipart mode', async () => {
    const res = await post(env.port, '/up', 'ign', multipartBody('ign', [{ headers: [CD('f')], data: 'x' }]), [['Session-ID', 'abc'], ['X-Content-Range', 'bytes 0-0/1']]);
    expect(res.status).toBe(200);
    expect(env.backend.calls[0].fields).toEqual([['f', 'x']]);
    expect(storeFiles(env.store)).toEqual(before);
  });

  test('a path-only file name (dir/) makes the part a field', async () => {
    const res = await post(env.port, '/up', 'p', multipartBody('p', [{ headers: [CD('f', 'dir/')], data: 'field data' }]));
    expect(res.status).toBe(200);
    expect(env.backend.calls[0].fields).toEqual([['f', 'field data']]);
  });

  test.each([
    ['no boundary', 'multipart/form-data', multipartBody('x', [{ headers: [CD('f')], data: 'x' }])],
    ['empty boundary', 'multipart/form-data; boundary=', multipartBody('x', [{ headers: [CD('f')], data: 'x' }])],
    ['upper-case BOUNDARY=', 'multipart/form-data; BOUNDARY=x', multipartBody('x', [{ headers: [CD('f')], data: 'x' }])],
    ['inline disposition', 'multipart/form-data; boundary=x', multipartBody('x', [{ headers: ['Content-Disposition: inline; name="f"'], data: 'x' }])],
    ['empty part Content-Type', 'multipart/form-data; boundary=x', multipartBody('x', [{ headers: [CD('f', 'a.txt'), 'Content-Type:   '], data: 'x' }])],
    ['header line of 64 bytes (limit 64)', 'multipart/form-data; boundary=x', multipartBody('x', [{ headers: [`X-Long: ${'h'.repeat(56)}`], data: 'x' }])],
    ['truncated body', 'multipart/form-data; boundary=x', multipartBody('x', [{ headers: [CD('f')], data: 'x' }], false)],
    ['boundary never found', 'multipart/form-data; boundary=x', 'just garbage'],
  ])('%s → 400 text/plain, backend not called, nothing stored', async (_name, contentType, body) => {
    const res = await rawRequest(env.port, requestBytes('/up', [['Content-Type', contentType]], body));
    expect(res.status).toBe(400);
    expect(header(res, 'Content-Type')[0]).toMatch(/^text\/plain/);
    expect(res.body.toString()).toMatch(/^[^\n]+\n$/);
    expect(header(res, 'Connection')).toEqual(['close']);
    expect(env.backend.calls).toHaveLength(0);
    expect(storeFiles(env.store)).toEqual(before);
  });

  test('a header line of 63 bytes passes (limit 64)', async () => {
    const res = await post(env.port, '/up', 'x', multipartBody('x', [{ headers: [`X-Long: ${'h'.repeat(55)}`, CD('f')], data: 'ok' }]));
    expect(res.status).toBe(200);
    expect(env.backend.calls[0].fields).toEqual([['f', 'ok']]);
  });

  test('D16: a body cut inside the second file → 400, the completed first file is removed too', async () => {
    const body = Buffer.concat([
      multipartBody('t', [{ headers: [CD('ok', 'ok.txt')], data: 'complete' }], false),
      Buffer.from('\r\n--t\r\nContent-Disposition: form-data; name="cut"; filename="cut.txt"\r\n\r\npartial da'),
    ]);
    const res = await post(env.port, '/up', 't', body);
    expect(res.status).toBe(400);
    expect(env.backend.calls).toHaveLength(0);
    expect(storeFiles(env.store)).toEqual(before);
  });

  test('chunked request bodies are accepted', async () => {
    const body = multipartBody('ch', [{ headers: [CD('f', 'c.txt')], data: 'chunked data' }]);
    const head = 'POST /up HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=ch\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n';
    const half = Math.floor(body.length / 2);
    const chunk = (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
    const res = await rawRequest(env.port, Buffer.concat([Buffer.from(head), chunk(body.subarray(0, half)), chunk(body.subarray(half)), Buffer.from('0\r\n\r\n')]));
    expect(res.status).toBe(200);
    expect(readFileSync(new Map(env.backend.calls[0].fields).get('f.path')!, 'latin1')).toBe('chunked data');
  });

  test('Expect: 100-continue gets its interim answer', async () => {
    const res = await post(env.port, '/up', 'e', multipartBody('e', [{ headers: [CD('f')], data: 'x' }]), [['Expect', '100-continue']]);
    expect(res.statuses).toEqual([100, 200]);
  });

  test('upload_cleanup: backend 500 removes every file of the request, 403 keeps them', async () => {
    const body = multipartBody('c', [{ headers: [CD('a', 'a.txt')], data: 'AAA' }, { headers: [CD('b', 'b.txt')], data: 'BBB' }]);
    const res = await post(env.port, '/up?status=500', 'c', body);
    expect(res.status).toBe(500);
    expect(res.body.toString()).toBe('backend 500\n');
    expect(env.backend.calls[0].files.size).toBe(2);
    expect(storeFiles(env.store)).toEqual(before);
    const kept = await post(env.port, '/up?status=403', 'c', body);
    expect(kept.status).toBe(403);
    expect(storeFiles(env.store)).toHaveLength(before.length + 2);
  });

  test('a client that half-closes mid-body gets 400 and leaves no file behind', async () => {
    const head = requestBytes('/up', [['Content-Type', 'multipart/form-data; boundary=h']], Buffer.alloc(0), { contentLength: 100_000 });
    const socket = net.connect(env.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => undefined);
    const closed = new Promise((r) => socket.on('close', r));
    socket.write(Buffer.concat([head, Buffer.from(`--h\r\n${CD('a', 'a.txt')}\r\n\r\nAAA\r\n--h\r\n${CD('b', 'b.txt')}\r\n\r\nBBBB`)]));
    await waitFor(() => storeFiles(env.store).length === before.length + 2);
    socket.end();
    await closed;
    expect(Buffer.concat(chunks).toString('latin1')).toMatch(/^HTTP\/1\.1 400 /);
    await waitFor(() => storeFiles(env.store).length === before.length);
    expect(env.backend.calls).toHaveLength(0);
  });

  test('a client that disconnects mid-file leaves no file behind', async () => {
    const head = requestBytes('/up', [['Content-Type', 'multipart/form-data; boundary=d']], Buffer.alloc(0), { contentLength: 10_000_000 });
    const socket = net.connect(env.port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(Buffer.concat([head, Buffer.from(`--d\r\n${CD('a', 'done.txt')}\r\n\r\ndone\r\n--d\r\n${CD('f', 'cut.bin')}\r\n\r\n`), randomBytes(100_000)]));
    await waitFor(() => storeFiles(env.store).length === before.length + 2);
    socket.destroy();
    await waitFor(() => storeFiles(env.store).length === before.length);
    expect(env.backend.calls).toHaveLength(0);
  });
});

describe('multipart uploads: limits and tame arrays', () => {
  test('upload_tame_arrays: "files[]" → "files" for file parts only', async () => {
    const env = await startEnv('upload_tame_arrays on; upload_pass_form_field ".";');
    try {
      const res = await post(env.port, '/up', 'arr', multipartBody('arr', [
        { headers: [CD('files[]', 'a.txt')], data: 'A' },
        { headers: [CD('x[1]', 'c.txt')], data: 'C' },
        { headers: [CD('[]', 'd.txt')], data: 'D' },
        { headers: [CD('arr[]')], data: 'field' },
      ]));
      expect(res.status).toBe(200);
      const fields = env.backend.calls[0].fields;
      expect(fields.filter(([n]) => n.endsWith('.field')).map(([, v]) => v)).toEqual(['files', 'x[1]', '[]']);
      expect(fields.filter(([n]) => n === 'files.name' || n === 'arr[]')).toEqual([['files.name', 'a.txt'], ['arr[]', 'field']]);
    } finally {
      await env.close();
    }
  });

  test('upload_max_file_size is soft: the big file is dropped and its fields rolled back, numbers keep counting', async () => {
    const env = await startEnv('upload_max_file_size 10; upload_pass_form_field "^(a|b)$";');
    try {
      const res = await post(env.port, '/up', 'L', multipartBody('L', [
        { headers: [CD('a')], data: 'before' },
        { headers: [CD('big', 'big.bin')], data: 'x'.repeat(11) },
        { headers: [CD('ok', 'ok.bin')], data: 'y'.repeat(10) },
        { headers: [CD('b')], data: 'after' },
      ]));
      expect(res.status).toBe(200);
      const fields = env.backend.calls[0].fields;
      expect(fields.map(([n]) => n)).toEqual(['a', 'ok.name', 'ok.content_type', 'ok.path', 'ok.field', 'ok.range', 'ok.number', 'ok.md5', 'ok.size', 'ok.arange', 'b']);
      expect(new Map(fields).get('ok.number')).toBe('2');
      expect(storeFiles(env.store)).toHaveLength(1);

      // Everything rolled back: the module's quirk body (no dummy, starts with CRLF).
      env.backend.calls.length = 0;
      const only = await post(env.port, '/up', 'L', multipartBody('L', [{ headers: [CD('big', 'big.bin')], data: 'x'.repeat(11) }]));
      expect(only.status).toBe(200);
      expect(env.backend.calls[0].body.toString('latin1')).toBe('\r\n--L--\r\n');
      expect(storeFiles(env.store)).toHaveLength(1);
    } finally {
      await env.close();
    }
  });

  test('D15: output over upload_max_output_body_len → 413, every file of the request removed', async () => {
    const env = await startEnv('upload_max_output_body_len 1500; upload_pass_form_field "^note$";');
    try {
      const file = (i: number) => ({ headers: [CD(`file${i}`, `file-number-${i}.txt`)], data: `content ${i}` });
      const one = await post(env.port, '/up', 'o', multipartBody('o', [file(1)]));
      expect(one.status).toBe(200);
      expect(env.backend.calls[0].body.length).toBeLessThanOrEqual(1500);
      const kept = storeFiles(env.store);
      expect(kept).toHaveLength(1);

      const many = await post(env.port, '/up', 'o', multipartBody('o', [file(1), file(2), file(3), file(4)]));
      expect(many.status).toBe(413);
      expect(header(many, 'Content-Type')[0]).toMatch(/^text\/plain/);
      expect(env.backend.calls).toHaveLength(1);
      expect(storeFiles(env.store)).toEqual(kept);

      // A passed field whose data goes over the limit is an error too (not silently dropped).
      const field = await post(env.port, '/up', 'o', multipartBody('o', [file(1), { headers: [CD('note')], data: 'n'.repeat(2000) }]));
      expect(field.status).toBe(413);
      expect(storeFiles(env.store)).toEqual(kept);
    } finally {
      await env.close();
    }
  });

  test('upload_limit_rate throttles the body read', async () => {
    const env = await startEnv('upload_limit_rate 20k;');
    try {
      const started = Date.now();
      const res = await post(env.port, '/up', 'r', multipartBody('r', [{ headers: [CD('f', 'r.bin')], data: randomBytes(50 * 1024) }]));
      expect(res.status).toBe(200);
      // 50 KiB at 20 KiB/s with R·(t+1) bytes by second t: at least 2 s.
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    } finally {
      await env.close();
    }
  });

  test.each([
    ['upload_cleanup 400;', 1],
    ['upload_cleanup 500-505;', 0],
  ])('backend unreachable → 502; with %s %d file(s) stay', async (cleanup, left) => {
    const env = await startEnv(`${cleanup} proxy_connect_timeout 2s;`);
    try {
      await env.backend.stop();
      const res = await post(env.port, '/up', 'u', multipartBody('u', [{ headers: [CD('f', 'a.txt')], data: 'x' }]));
      expect(res.status).toBe(502);
      expect(storeFiles(env.store)).toHaveLength(left);
    } finally {
      await env.close();
    }
  });

  test('the store cannot be written → 503, nothing left behind', async () => {
    const env = await startEnv('');
    try {
      // A file where the hash directory should be: creating the output file fails.
      const { mkdirSync, writeFileSync } = await import('node:fs');
      mkdirSync(env.store, { recursive: true });
      for (let d = 0; d < 10; d++) writeFileSync(path.join(env.store, String(d)), 'not a directory');
      const res = await post(env.port, '/up', 's', multipartBody('s', [{ headers: [CD('f', 'a.txt')], data: 'x' }]));
      expect(res.status).toBe(503);
      expect(env.backend.calls).toHaveLength(0);
    } finally {
      await env.close();
    }
  });
});
