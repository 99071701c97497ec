#!/usr/bin/env node
import { abandonedWork } from '../util/timeout.js';
import { runCli } from './run.js';

process.exitCode = await runCli(process.argv.slice(2));
// A call abandoned after its deadline may still hold a libuv thread and keep the loop alive.
if (abandonedWork().length > 0) process.exit();
