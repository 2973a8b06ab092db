/** D21: an expected digest of a segment's body, from `Content-MD5`, `Repr-Digest` or `Digest`. */
export interface ExpectedChecksum {
  algorithm: 'md5' | 'sha1' | 'sha256' | 'sha512';
  /** Lower-case hex. */
  hex: string;
  header: string;
}

const ALGORITHMS: Record<string, ExpectedChecksum['algorithm']> = { md5: 'md5', 'sha-256': 'sha256', 'sha-512': 'sha512' };
/** Digest sizes in bytes. */
export const DIGEST_LENGTHS = { md5: 16, sha1: 20, sha256: 32, sha512: 64 } as const;

/**
 * Reads the first checksum header present. `Content-MD5: <base64>`; `Repr-Digest: sha-256=:<base64>:`
 * (RFC 9530); `Digest: sha-256=<base64>` (RFC 3230). Unknown algorithms are ignored; a malformed
 * value for a known one is an error (returned as a reason).
 */
export function parseChecksumHeaders(headers: { contentMd5?: string; reprDigest?: string; digest?: string }): ExpectedChecksum | null | { error: string } {
  if (headers.contentMd5 !== undefined) return decoded('md5', headers.contentMd5.trim(), 'Content-MD5');
  for (const [header, value, structured] of [
    ['Repr-Digest', headers.reprDigest, true],
    ['Digest', headers.digest, false],
  ] as const) {
    if (value === undefined) continue;
    for (const member of value.split(',')) {
      const eq = member.indexOf('=');
      if (eq < 0) continue;
      const algorithm = ALGORITHMS[member.slice(0, eq).trim().toLowerCase()];
      if (!algorithm) continue;
      let encoded = member.slice(eq + 1).trim();
      if (structured) {
        if (!/^:[^:]*:$/.test(encoded)) return { error: `malformed ${header} value` };
        encoded = encoded.slice(1, -1);
      }
      return decoded(algorithm, encoded, header);
    }
  }
  return null;
}

function decoded(algorithm: ExpectedChecksum['algorithm'], base64: string, header: string): ExpectedChecksum | { error: string } {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return { error: `malformed ${header} value` };
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length !== DIGEST_LENGTHS[algorithm]) return { error: `malformed ${header} value: wrong digest length` };
  return { algorithm, hex: bytes.toString('hex'), header };
}
