import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Bundles the guest agent with the build's own script, so tests run exactly what ships. */
export async function bundleAgent(outfile: string): Promise<string> {
  await execFileP(process.execPath, ['scripts/bundle-agent.mjs', '--outfile', outfile], { timeout: 60_000 });
  return outfile;
}
