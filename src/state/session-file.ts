/**
 * A new session's data file: created with O_EXCL at the session's name (`<store>/<levels>/<id>`,
 * the module's layout). The name may hold the file a retired session of this id left for the
 * backend, which makes way (D9); any other file there is another upload's, and the session is
 * refused (409, D32). After a crash between a session's header and its file's record
 * (`recovering`), a file found at the name is taken as the one the header announced.
 */
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { HttpError } from '../protocol/http-errors';
import type { SessionRecord } from '../session/model';
import { createExclusive, fileIdAt, NameTakenError, openOwned, unlinkIfOwned, type FileId } from '../store/files';
import { storageError } from '../store/store-errors';
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
