/**
 * A session's data file, the same for both engines: created with O_EXCL at the session's name
 * (`<store>/<levels>/<id>`, the module's layout). The name may hold the file a retired session of this id left for the
 * backend, which makes way (D9); any other file there is another upload's, and the session is
 * refused (409, D32). After a crash between a session's header and its file's record
 * (`recovering`), a file found at the name is taken as the one the header announced. Its identity
 * is recorded in the session state before it is used, and later segments take it from the pool.
 */
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { HttpError } from '../protocol/http-errors';
import type { SessionRecord } from '../session/model';
import { createExclusive, fileIdAt, NameTakenError, openOwned, unlinkIfOwned, type FileId } from '../store/files';
import { storageError } from '../store/store-errors';
import type { DataFilePool, PooledFile } from '../store/data-file-pool';
import { isFileComplete } from '../session/rules';
import type { EnginePolicy } from './engine';

export function nameTakenError(record: SessionRecord): HttpError {
  return new HttpError(409, `the upload store already holds another upload's file named ${path.basename(record.dataPath)}; use another Session-ID`);
}

export async function createSessionFile(record: SessionRecord, policy: EnginePolicy, recovering: boolean): Promise<{ handle: FileHandle; fileId: FileId }> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await createExclusive(record.dataPath, policy.fileMode, policy.durable);
    } catch (err) {
      if (!(err instanceof NameTakenError)) throw storageError(err);
      const existing = await fileIdAt(record.dataPath);
      if (existing !== null && existing === record.replaces && attempt === 0) {
        await unlinkIfOwned(record.dataPath, existing);
        continue;
      }
      const adopted = recovering && existing !== null ? await openOwned(record.dataPath, existing) : null;
      if (!adopted) throw nameTakenError(record);
      return { handle: adopted, fileId: existing! };
    }
  }
}

/**
 * Creates the session's data file and has `recordIt` record its identity in the session state;
 * when that fails, the file goes again. Once recorded, the open file joins the pool.
 */
export async function createRecordedFile(pool: DataFilePool, record: SessionRecord, policy: EnginePolicy, recovering: boolean, recordIt: (fileId: FileId) => Promise<void>): Promise<FileId> {
  const created = await createSessionFile(record, policy, recovering);
  try {
    await recordIt(created.fileId);
  } catch (err) {
    await created.handle.close().catch(() => undefined);
    await unlinkIfOwned(record.dataPath, created.fileId).catch(() => undefined);
    throw err;
  }
  pool.release(pool.adopt(record.dataPath, created.fileId, created.handle));
  return created.fileId;
}

/** The session's data file from the pool: null when it has none yet, or (complete) none any more; 409 when it is gone mid-upload. */
export async function acquireSessionFile(pool: DataFilePool, record: SessionRecord): Promise<PooledFile | null> {
  if (record.fileId === null) return null;
  const file = await pool.acquire(record.dataPath, record.fileId).catch((err) => {
    throw storageError(err);
  });
  if (!file && !isFileComplete(record)) {
    throw new HttpError(409, `the data file of session ${record.id} is gone (removed from the store); the upload must start again`);
  }
  return file;
}
