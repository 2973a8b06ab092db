import { startTestGateway, segmentRequest } from './helpers/gateway';
import * as net from 'node:net';
test('probe pipelining', async () => {
  const gw = await startTestGateway();
  try {
    for (let i = 0; i < 5; i++) {
      const id = `pp${i}`;
      const big = Buffer.alloc(200000, 0x61);
      const a = segmentRequest(id, 0, big.length - 1, big.length + 5, big, [['Connection', 'keep-alive']]);
      const b = segmentRequest(id, big.length, big.length + 4, big.length + 5, 'world');
      const raw = await new Promise<string>((resolve) => {
        const s = net.connect(gw.port, '127.0.0.1', () => s.write(Buffer.concat([a, b])));
        const chunks: Buffer[] = [];
        s.on('data', (c) => chunks.push(c));
        s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      });
      console.log(raw.split('\r\n').filter((l) => /^HTTP|^Range|^\d|^backend/.test(l)).join(' | '));
      const a2 = segmentRequest(id + 'r', 0, 4, 10, 'hello', [['Connection', 'keep-alive']]);
      const b2 = segmentRequest(id + 'r', 0, 4, 10, 'hello');
      const raw2 = await new Promise<string>((resolve) => {
        const s = net.connect(gw.port, '127.0.0.1', () => s.write(Buffer.concat([a2, b2])));
        const chunks: Buffer[] = [];
        s.on('data', (c) => chunks.push(c));
        s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
      });
      console.log('retry:', JSON.stringify(raw2));
    }
  } finally { await gw.close(); }
});
