#!/usr/bin/env node
import { abandonedWork } from '../util/timeout.js';
import { fastPath } from './fast-path.js';

const argv = process.argv.slice(2);
// Help, --version and `list --json` answer without yargs; everything else loads it (docs/architecture.md, "Start-up").
let code = await fastPath(argv);
if (code === undefined) {
  const { runCli } = await import('./run.js');
  code = await runCli(argv);
}
process.exitCode = code;
// A call abandoned after its deadline may still hold a libuv thread and keep the loop alive.
// (A static import: loading it here, after the output, was one more file between `list` and its exit.)
if (abandonedWork().length > 0) process.exit();
