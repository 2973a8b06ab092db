/**
 * `npm run test:compose`: docker/docker-compose.yml brought up for real on podman (as root), apart
 * from `npm test` because its first run makes images (README "Deploy").
 * @type {import('jest').Config}
 */
module.exports = {
  ...require('./jest.config'),
  roots: ['<rootDir>/test/compose'],
  testPathIgnorePatterns: ['/node_modules/'],
};
