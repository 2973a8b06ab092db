// One temporary directory per `npm test` run: every test's tempDir() is made inside it (jest's
// workers inherit the variable), and it goes when the run ends, whatever the tests left behind.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const VARIABLE = 'UPLOAD_GATEWAY_TEST_TMP';

module.exports.setup = function setup() {
  process.env[VARIABLE] = fs.mkdtempSync(path.join(os.tmpdir(), 'upload-gateway-tests-'));
};

module.exports.teardown = function teardown() {
  const dir = process.env[VARIABLE];
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
};
