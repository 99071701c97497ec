import fs from 'node:fs/promises';

/** A state file's text, or undefined when there is none; any other error (permissions, I/O) passes through. */
export async function readTextIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
