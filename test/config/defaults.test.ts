import * as path from 'node:path';
import { embeddedConfigText, embeddedDefaults } from '../../src/config/defaults';
import { parseConfig } from '../../src/config/parse';

const DATA = '/srv/upload-data';

describe('embeddedDefaults', () => {
  const config = embeddedDefaults({ dataDir: DATA });

  test('listener and sample backend', () => {
    expect(config.source).toBe('<defaults>');
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.sampleBackend).toEqual({ filesDir: `${DATA}/files` });
  });

  test('one resumable prefix location /upload', () => {
    expect(config.locations).toHaveLength(1);
    const [location] = config.locations;
    expect(location).toMatchObject({
      match: 'prefix',
      path: '/upload',
      resumable: true,
      store: { dir: `${DATA}/store`, levels: [1] },
      stateStore: { dir: `${DATA}/state`, levels: [] },
      clientMaxBodySize: 100 * 1024 * 1024,
      cleanup: [
        [400, 400],
        [404, 404],
        [499, 499],
        [500, 505],
      ],
      uploadPass: {
        origin: 'http://127.0.0.1:8080',
        hostHeader: '127.0.0.1:8080',
        path: '/_backend/complete',
      },
    });
    expect(location.setFormFields.map((f) => [f.name.source, f.value.source])).toEqual([
      ['name', '$upload_file_name'],
      ['content_type', '$upload_content_type'],
      ['path', '$upload_tmp_path'],
    ]);
    expect(location.aggregateFormFields.map((f) => [f.name.source, f.value.source])).toEqual([
      ['md5', '$upload_file_md5'],
      ['size', '$upload_file_size'],
    ]);
    // Everything else is the module's default.
    expect(location).toMatchObject({ bufferSize: 4096, maxFileSize: 0, passArgs: false, storeAccess: 0o600, fsync: true });
  });

  test('the listen option moves the sample backend with it', () => {
    const moved = embeddedDefaults({ dataDir: DATA, listen: { host: 'localhost', port: 9999 } });
    expect(moved.listen).toEqual({ host: 'localhost', port: 9999 });
    expect(moved.locations[0].uploadPass).toMatchObject({ origin: 'http://localhost:9999', path: '/_backend/complete' });
  });

  test('a wildcard listen address reaches the sample backend over loopback', () => {
    expect(embeddedDefaults({ dataDir: DATA, listen: { host: '0.0.0.0', port: 80 } }).locations[0].uploadPass.origin).toBe('http://127.0.0.1');
    const v6 = embeddedDefaults({ dataDir: DATA, listen: { host: '::', port: 8080 } });
    expect(v6.listen).toEqual({ host: '::', port: 8080 });
    expect(v6.locations[0].uploadPass.origin).toBe('http://[::1]:8080');
  });

  test('the data directory defaults to ./data, relative to the working directory', () => {
    const cwdData = path.resolve(process.cwd(), 'data');
    const defaults = embeddedDefaults();
    expect(defaults.locations[0].store.dir).toBe(path.join(cwdData, 'store'));
    expect(defaults.sampleBackend).toEqual({ filesDir: path.join(cwdData, 'files') });
    expect(embeddedDefaults({ dataDir: 'var/x' }).locations[0].stateStore.dir).toBe(path.resolve('var/x/state'));
  });

  test('a data directory with spaces, quotes or dollars needs no quoting', () => {
    const odd = '/srv/my "odd" $dir';
    expect(embeddedDefaults({ dataDir: odd }).locations[0].store.dir).toBe(`${odd}/store`);
  });

  test('is the parse of its own configuration text', () => {
    const text = embeddedConfigText({ host: '127.0.0.1', port: 8080 });
    expect(parseConfig(text, '<defaults>', { baseDir: DATA })).toEqual({ ...config, sampleBackend: null });
  });
});
