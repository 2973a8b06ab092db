/**
 * Assembling a file from others in the kernel (tus concatenation): GNU `cat` (coreutils 9) copies
 * with copy_file_range(2) when its output is a regular file, so the bytes never pass through this
 * process, and on file systems that share extents (Btrfs, XFS, NFS 4.2) they are not even copied.
 * Node has no copy_file_range at an offset of an open file, hence the child process.
 */
import { spawn } from 'node:child_process';
import { openOwned, type FileId } from './files';

/** The program and leading arguments that write their file arguments, in order, to their standard output. */
export const CONCATENATE_COMMAND: readonly string[] = ['cat'];

/**
 * Writes `sources` one after the other into `target` from byte 0. The target is opened again here
 * (identity checked, so only the session's own file is written), for a descriptor of its own
 * positioned at 0. Throws when the target is not the file `targetId` or `cat` fails.
 */
export async function concatenateInto(target: string, targetId: FileId, sources: readonly string[], command: readonly string[] = CONCATENATE_COMMAND): Promise<void> {
  const handle = await openOwned(target, targetId);
  if (!handle) throw new Error(`the data file ${target} is gone`);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(command[0]!, [...command.slice(1), '--', ...sources], { stdio: ['ignore', handle.fd, 'pipe'] });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        if (stderr.length < 2000) stderr += chunk;
      });
      child.on('error', reject);
      child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else reject(new Error(`${command[0]} exited with ${signal ?? code}: ${stderr.trim() || 'no message'}`));
      });
    });
  } finally {
    await handle.close();
  }
}
