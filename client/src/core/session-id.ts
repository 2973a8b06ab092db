import type { SegmentSource } from './types';
import { toHex } from './headers';
import { DEFAULT_SESSION_ID_MAX_LENGTH, parseSessionId } from '../../../src/protocol/session-id';

const MIB = 1024 * 1024;

/**
 * A stable Session-ID for a file: SHA-256 over its name, size and modification time and over its
 * first and last MiB, as 40 hex digits. The original hashed only name and size, so two different
 * files of the same name and size collided; the same file picked again (or uploaded from the
 * command line: the same name, size and mtime give the same id) resumes its session.
 */
export async function sessionIdForSource(source: SegmentSource, sha256: (data: Uint8Array) => Promise<Uint8Array>): Promise<string> {
  const meta = new TextEncoder().encode(`upload-gateway session\n${source.name}\n${source.size}\n${Math.floor(source.lastModified)}\n`);
  const head = await source.read(0, Math.min(MIB, source.size));
  const tail = await source.read(Math.max(0, source.size - MIB), source.size);
  const all = new Uint8Array(meta.length + head.length + tail.length);
  all.set(meta, 0);
  all.set(head, meta.length);
  all.set(tail, meta.length + head.length);
  return toHex(await sha256(all)).slice(0, 40);
}

/** Session-IDs the module and the gateway accept (1–200 of `A-Z a-z 0-9 _ -`). */
export function checkSessionId(id: string): string {
  const parsed = parseSessionId(String(id), DEFAULT_SESSION_ID_MAX_LENGTH);
  if (!parsed.ok) throw new TypeError(`invalid session id ${JSON.stringify(id)}: ${parsed.reason}`);
  return parsed.id;
}
