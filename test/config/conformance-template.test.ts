/**
 * The conformance profile (shared/conformance/gateway.conf.template) must be accepted after
 * placeholder substitution and give the locations its README describes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfigFile, parseConfig } from '../../src/config/parse';
import type { LocationConfig } from '../../src/config/types';
import { tempDir } from '../helpers/process';

const TEMPLATE = path.resolve(__dirname, '../../../shared/conformance/gateway.conf.template');

function readTemplate(): string {
  if (!fs.existsSync(TEMPLATE)) {
    throw new Error(`conformance template not found at ${TEMPLATE}: the shared/ directory must sit next to the repository`);
  }
  return fs.readFileSync(TEMPLATE, 'utf8');
}

const STORE = path.join(os.tmpdir(), 'conformance', 'store');
const STATE = path.join(os.tmpdir(), 'conformance', 'state');

function substitute(template: string): string {
  return template
    .replace(/__PORT__/g, '18080')
    .replace(/__STORE__/g, STORE)
    .replace(/__STATE__/g, STATE)
    .replace(/__BACKEND__/g, '127.0.0.1:19090');
}

describe('conformance profile', () => {
  const text = substitute(readTemplate());
  const config = parseConfig(text, 'gateway.conf');
  const byPath = Object.fromEntries(config.locations.map((l) => [l.path, l])) as Record<string, LocationConfig>;

  test('all placeholders were substituted', () => {
    expect(text).not.toMatch(/__[A-Z]+__/);
  });

  test('listener and body limit', () => {
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 18080 });
    expect(config.clientMaxBodySize).toBe(100 * 1024 * 1024);
    expect(config.sampleBackend).toBeNull();
  });

  test('three exact upload locations, in file order', () => {
    expect(config.locations.map((l) => [l.match, l.path])).toEqual([
      ['exact', '/upload'],
      ['exact', '/upload-limited'],
      ['exact', '/upload-plain'],
    ]);
  });

  test.each(['/upload', '/upload-limited', '/upload-plain'])('%s: common settings', (p) => {
    const location = byPath[p];
    expect(location.uploadPass).toEqual({
      source: 'http://127.0.0.1:19090',
      origin: 'http://127.0.0.1:19090',
      hostHeader: '127.0.0.1:19090',
      path: null,
    });
    expect(location.store).toEqual({ dir: STORE, levels: [1] });
    expect(location.stateStore).toEqual({ dir: STATE, levels: [] });
    expect(location.storeAccess).toBe(0o600);
    expect(location.setFormFields.map((f) => [f.name.source, f.value.source])).toEqual([
      ['name', '$upload_file_name'],
      ['content_type', '$upload_content_type'],
      ['path', '$upload_tmp_path'],
      ['field', '$upload_field_name'],
      ['range', '$upload_content_range'],
      ['number', '$upload_file_number'],
    ]);
    expect(location.aggregateFormFields.map((f) => [f.name.source, f.value.source])).toEqual([
      ['md5', '$upload_file_md5'],
      ['sha1', '$upload_file_sha1'],
      ['sha256', '$upload_file_sha256'],
      ['crc32', '$upload_file_crc32'],
      ['size', '$upload_file_size'],
    ]);
    expect(location.passFormFields).toEqual(['^submit$|^description$']);
    expect(location.passArgs).toBe(true);
    expect(location.cleanup).toEqual([
      [400, 400],
      [404, 404],
      [499, 499],
      [500, 505],
    ]);
    // Defaults the profile leaves unchanged.
    expect(location).toMatchObject({
      bufferSize: 4096,
      maxPartHeaderLen: 512,
      limitRate: 0,
      rangeHeaderBufferSize: 256,
      mergeBufferSize: 2048,
      clientMaxBodySize: 100 * 1024 * 1024,
    });
  });

  test('per-location settings', () => {
    expect(byPath['/upload']).toMatchObject({ resumable: true, tameArrays: false, maxFileSize: 0, maxOutputBodyLen: 100 * 1024 });
    expect(byPath['/upload-limited']).toMatchObject({ resumable: true, tameArrays: false, maxFileSize: 1000, maxOutputBodyLen: 2048 });
    expect(byPath['/upload-plain']).toMatchObject({ resumable: false, tameArrays: true, maxFileSize: 0, maxOutputBodyLen: 100 * 1024 });
  });

  test('the D5 pattern really passes the profile fields', () => {
    const pattern = new RegExp(byPath['/upload'].passFormFields[0]);
    expect(['submit', 'description', 'secret', 'submit2'].filter((n) => pattern.test(n))).toEqual(['submit', 'description']);
  });

  test('loadConfigFile reads it from disk, resolving relative paths against its directory', () => {
    const dir = tempDir('gw-config-');
    try {
      const file = path.join(dir, 'gateway.conf');
      fs.writeFileSync(file, text.replace(new RegExp(STORE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g'), 'rel/store'));
      const loaded = loadConfigFile(file);
      expect(loaded.source).toBe(file);
      expect(loaded.locations[0].store.dir).toBe(path.join(dir, 'rel/store'));
      expect(loaded.locations[0].stateStore.dir).toBe(STATE);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
