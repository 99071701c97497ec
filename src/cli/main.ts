#!/usr/bin/env node
import { abandonedWork } from '../util/timeout.js';
import { runCli } from './run.js';

process.exitCode = await runCli(process.argv.slice(2));
// A call abandoned after its deadline (a native libvirt or keyring call) may still hold a
// thread and would keep the process alive: exit, the answer has been given.
if (abandonedWork().length > 0) process.exit(process.exitCode);
