/**
 * The journal's on-disk form: one record per line, `<crc32 of the JSON, 8 hex digits> <JSON>\n`.
 * Text, so an operator can read a journal with `cut -c10- | jq`; checksummed, so a line torn by a
 * crash (or damaged on disk) is detected. Replay keeps the records before the first bad line and
 * the writer truncates the file there: appends only ever follow a good prefix.
 */
import * as zlib from 'node:zlib';
import type { JournalRecord } from './model';

const LF = 0x0a;

export function encodeRecords(records: readonly JournalRecord[]): Buffer {
  let text = '';
  for (const record of records) {
    const json = JSON.stringify(record);
    text += `${crcHex(json)} ${json}\n`;
  }
  return Buffer.from(text, 'utf8');
}

function crcHex(json: string): string {
  return (zlib.crc32(json) >>> 0).toString(16).padStart(8, '0');
}

/** The records of the longest good prefix of `data`, and that prefix's length in bytes. */
export function decodeRecords(data: Buffer): { records: JournalRecord[]; goodLength: number } {
  const records: JournalRecord[] = [];
  let offset = 0;
  while (offset < data.length) {
    const lf = data.indexOf(LF, offset);
    if (lf < 0) break; // torn tail: no line end
    const line = data.toString('utf8', offset, lf);
    const record = decodeLine(line);
    if (!record) break;
    records.push(record);
    offset = lf + 1;
  }
  return { records, goodLength: offset };
}

function decodeLine(line: string): JournalRecord | null {
  if (line.length < 10 || line[8] !== ' ') return null;
  const json = line.slice(9);
  if (crcHex(json) !== line.slice(0, 8)) return null;
  try {
    const record = JSON.parse(json) as JournalRecord;
    return record && typeof record === 'object' && typeof record.t === 'string' ? record : null;
  } catch {
    return null;
  }
}
