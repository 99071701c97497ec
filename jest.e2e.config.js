// The end-to-end proof on a real VM (`npm run test:e2e`): its own run, after
// `npm test`, because it builds a guest image and boots it under emulation.
import base from './jest.config.js';

/** @type {import('jest').Config} */
export default {
  ...base,
  testMatch: ['**/test/e2e/**/*.e2e.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 300_000,
};
