import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { followFile } from '../../../src/install/log-follower.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('log follower', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-inst-follow-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function collect(
    file: string,
    signal: AbortSignal,
    pollIntervalMs = 60_000,
  ): Promise<{ text: string }> {
    let text = '';
    for await (const chunk of followFile(file, { signal, pollIntervalMs })) text += chunk;
    return { text };
  }

  test('waits for the file to appear, then yields what is appended, woken by change events', async () => {
    const file = path.join(dir, 'serial.log');
    const ac = new AbortController();
    let text = '';
    const seen = async (needle: string): Promise<void> => {
      // Bounded far below the 60 s poll interval: only a change event can deliver in time.
      for (let i = 0; i < 100 && !text.includes(needle); i++) await sleep(50);
      expect(text).toContain(needle);
    };
    const done = (async () => {
      for await (const chunk of followFile(file, { signal: ac.signal, pollIntervalMs: 60_000 }))
        text += chunk;
    })();
    await sleep(100);
    fs.writeFileSync(file, 'Starting installer, one moment...\n');
    await seen('Starting installer');
    fs.appendFileSync(file, 'Configuring storage\n');
    await seen('Configuring storage');
    fs.appendFileSync(file, 'last line without newline');
    await seen('last line');
    ac.abort();
    await done;
    expect(text).toBe('Starting installer, one moment...\nConfiguring storage\nlast line without newline');
  });

  test('a multi-byte character split across writes arrives whole', async () => {
    const file = path.join(dir, 'serial.log');
    const bytes = Buffer.from('€uro\n');
    fs.writeFileSync(file, bytes.subarray(0, 1));
    const ac = new AbortController();
    const chunks: string[] = [];
    const done = (async () => {
      for await (const chunk of followFile(file, { signal: ac.signal })) chunks.push(chunk);
    })();
    await sleep(100);
    fs.appendFileSync(file, bytes.subarray(1));
    await sleep(100);
    ac.abort();
    await done;
    expect(chunks.join('')).toBe('€uro\n');
    expect(chunks.join('')).not.toContain('\ufffd');
  });

  test('a truncated (re-created) file is read again from the start', async () => {
    const file = path.join(dir, 'serial.log');
    fs.writeFileSync(file, 'first boot, a long line of text\n');
    const ac = new AbortController();
    const done = collect(file, ac.signal, 200);
    await sleep(150);
    fs.writeFileSync(file, 'second\n');
    await sleep(400);
    ac.abort();
    expect((await done).text).toBe('first boot, a long line of text\nsecond\n');
  });

  test('a large file is delivered completely, in order', async () => {
    const file = path.join(dir, 'serial.log');
    const lines = Array.from(
      { length: 20_000 },
      (_, i) => `Installing pkg${i}.x86_64 (${i + 1}/20000)\n`,
    ).join('');
    fs.writeFileSync(file, lines);
    const ac = new AbortController();
    ac.abort(); // already stopping: read what is there and return
    expect((await collect(file, ac.signal)).text).toBe(lines);
  });

  test('the fallback poll picks up changes when no event arrives', async () => {
    // Watching a directory that is then replaced loses the watch; the poll still reads.
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub);
    const file = path.join(sub, 'serial.log');
    const ac = new AbortController();
    const done = collect(file, ac.signal, 100);
    await sleep(100);
    fs.rmSync(sub, { recursive: true });
    fs.mkdirSync(sub);
    fs.writeFileSync(file, 'after the directory came back\n');
    await sleep(400);
    ac.abort();
    expect((await done).text).toBe('after the directory came back\n');
  });
});
