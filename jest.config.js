// ESM + TypeScript: ts-jest compiles each file as an ES module; Node runs them
// under --experimental-vm-modules (see the "test" script), so ESM-only
// dependencies (execa, chalk, yargs, inquirer) load as they do in production.
/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // test/e2e runs on its own (`npm run test:e2e`, jest.e2e.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/e2e/'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.cjs'],
  // A test that leaves a socket or child open must fail loudly, not hang CI.
  forceExit: false,
  detectOpenHandles: false,
};
