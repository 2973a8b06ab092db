import { startTestGateway, rawRequest, httpRequest, segmentRequest } from './helpers/gateway';

test('probe', async () => {
  const gw = await startTestGateway();
  try {
    const big = Buffer.alloc(1024 * 1024, 0x41);
    const r1 = await rawRequest(gw.port, segmentRequest('a.b', 0, big.length - 1, big.length, big, [['Connection', 'keep-alive']]));
    console.log('bad sid big body', r1.status, r1.headers, r1.body.toString(), r1.closed);
    const r2 = await rawRequest(gw.port, Buffer.concat([segmentRequest('a.b', 0, 4, 10, 'hello', [['Connection', 'keep-alive']]), Buffer.from('GET /upload HTTP/1.1\r\nHost: x\r\n\r\n')]));
    console.log('bad sid keepalive', r2.status, r2.raw.toString());
    const r3 = await rawRequest(gw.port, segmentRequest('s1', 0, 4, 10, 'hello'));
    console.log('201', r3.raw.toString());
    const r4 = await rawRequest(gw.port, httpRequest('HEAD', '/upload', [['Session-ID', 'nope']]));
    console.log('HEAD', JSON.stringify(r4.raw.toString()));
    const r5 = await rawRequest(gw.port, httpRequest('GET', '/upload', [['Session-ID', 's1']]));
    console.log('GET', JSON.stringify(r5.raw.toString()));
  } finally { await gw.close(); }
});
