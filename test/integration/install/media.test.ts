import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ChecksumMismatchError,
  fetchInstallMedia,
  mediaCacheDir,
  type DownloadProgress,
} from '../../../src/install/media.js';
import { ServiceUnavailableError, TimeoutError } from '../../../src/util/errors.js';
import { serveTree, treeFiles, type FakeTreeServer } from '../../support/fake-tree/tree.js';

// Real HTTP on loopback (port 0), real files: no service to probe.
describe('install media from a loopback install tree', () => {
  const kernel = randomBytes(3 * 1024 * 1024 + 17);
  const initrd = randomBytes(5 * 1024 * 1024 + 3);
  let server: FakeTreeServer;
  let cacheRoot: string;

  beforeEach(async () => {
    server = await serveTree(treeFiles(kernel, initrd));
    cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'vmp-t-inst-media-'));
  });
  afterEach(async () => {
    await server.close();
    fs.rmSync(cacheRoot, { recursive: true, force: true });
  });

  const leftovers = (dir: string): string[] =>
    fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.includes('.part')) : [];

  test('downloads, verifies and caches; the second fetch downloads nothing', async () => {
    const progress: DownloadProgress[] = [];
    const t0 = performance.now();
    const first = await fetchInstallMedia({
      treeUrl: server.url,
      arch: 'x86_64',
      cacheRoot,
      onProgress: (p) => progress.push(p),
    });
    const t1 = performance.now();
    expect(first.downloaded).toBe(true);
    expect(fs.readFileSync(first.kernelPath).equals(kernel)).toBe(true);
    expect(fs.readFileSync(first.initrdPath).equals(initrd)).toBe(true);
    expect(first.dir).toBe(mediaCacheDir(server.url, 'x86_64', cacheRoot));
    expect(server.requests).toEqual(['.treeinfo', 'images/pxeboot/vmlinuz', 'images/pxeboot/initrd.img']);

    const initrdProgress = progress.filter((p) => p.file === 'initrd');
    expect(initrdProgress.length).toBeGreaterThan(2);
    expect(initrdProgress.every((p) => p.totalBytes === initrd.length)).toBe(true);
    expect(initrdProgress.map((p) => p.receivedBytes)).toEqual(
      [...initrdProgress.map((p) => p.receivedBytes)].sort((a, b) => a - b),
    );
    expect(initrdProgress.at(-1)!.receivedBytes).toBe(initrd.length);

    const second = await fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot });
    const t2 = performance.now();
    expect(second.downloaded).toBe(false);
    expect(second.initrdPath).toBe(first.initrdPath);
    expect(server.requests).toHaveLength(3);
    process.stdout.write(
      `media: first fetch (8 MiB) ${(t1 - t0).toFixed(0)} ms, cached fetch ${(t2 - t1).toFixed(0)} ms\n`,
    );
  });

  test('a tree URL without the trailing slash is the same tree and the same cache', async () => {
    await fetchInstallMedia({ treeUrl: server.url.replace(/\/$/, ''), arch: 'x86_64', cacheRoot });
    const again = await fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot });
    expect(again.downloaded).toBe(false);
  });

  test('follows http redirects to the file', async () => {
    server.files.set('/mirror/vmlinuz', kernel);
    server.hooks.set('images/pxeboot/vmlinuz', (_req, res) =>
      res.writeHead(302, { location: '/mirror/vmlinuz' }).end(),
    );
    const media = await fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot });
    expect(fs.readFileSync(media.kernelPath).equals(kernel)).toBe(true);
    expect(server.requests).toContain('/mirror/vmlinuz');
  });

  test('refuses a redirect to a non-http scheme and caches nothing', async () => {
    server.hooks.set('images/pxeboot/vmlinuz', (_req, res) =>
      res.writeHead(301, { location: 'file:///etc/passwd' }).end(),
    );
    await expect(fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot })).rejects.toThrow(
      /only http and https are followed/,
    );
    const dir = mediaCacheDir(server.url, 'x86_64', cacheRoot);
    expect(fs.existsSync(path.join(dir, 'vmlinuz'))).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });

  test('a corrupt download is rejected, leaves nothing behind, and a later good fetch works', async () => {
    const bad = Buffer.from(initrd);
    bad.writeUInt8(bad.readUInt8(1000) ^ 0xff, 1000);
    server.files.set('images/pxeboot/initrd.img', bad);
    const err = await fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ChecksumMismatchError);
    expect((err as Error).message).toMatch(
      /initrd\.img has sha256 [0-9a-f]{64}, but the tree's \.treeinfo says/,
    );
    const dir = mediaCacheDir(server.url, 'x86_64', cacheRoot);
    expect(fs.existsSync(path.join(dir, 'initrd.img'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'media.json'))).toBe(false);
    expect(leftovers(dir)).toEqual([]);

    server.files.set('images/pxeboot/initrd.img', initrd);
    const media = await fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot });
    expect(media.downloaded).toBe(true);
    expect(fs.readFileSync(media.initrdPath).equals(initrd)).toBe(true);
  });

  test('a stalled download times out and leaves no partial file', async () => {
    server.hooks.set('images/pxeboot/initrd.img', (_req, res) => {
      res.writeHead(200, { 'content-length': initrd.length });
      res.write(initrd.subarray(0, 100_000)); // then nothing, ever
    });
    const started = performance.now();
    const err = await fetchInstallMedia({
      treeUrl: server.url,
      arch: 'x86_64',
      cacheRoot,
      stallTimeoutMs: 400,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toMatch(/no data for 400 ms/);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(leftovers(mediaCacheDir(server.url, 'x86_64', cacheRoot))).toEqual([]);
  });

  test('a server that never answers times out', async () => {
    server.hooks.set('.treeinfo', () => undefined);
    await expect(
      fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot, stallTimeoutMs: 300 }),
    ).rejects.toBeInstanceOf(TimeoutError);
  });

  test('a connection cut short is an error, not a truncated file', async () => {
    server.hooks.set('images/pxeboot/initrd.img', (req, res) => {
      res.writeHead(200, { 'content-length': initrd.length });
      res.write(initrd.subarray(0, 200_000), () => req.socket.destroy());
    });
    const err = await fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ServiceUnavailableError);
    const dir = mediaCacheDir(server.url, 'x86_64', cacheRoot);
    expect(fs.existsSync(path.join(dir, 'initrd.img'))).toBe(false);
    expect(leftovers(dir)).toEqual([]);
  });

  test('a tree without .treeinfo is reported with the HTTP status', async () => {
    server.files.delete('.treeinfo');
    await expect(fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot })).rejects.toThrow(
      /\.treeinfo: HTTP 404/,
    );
  });

  test('a tree for another arch is refused before downloading images', async () => {
    await expect(fetchInstallMedia({ treeUrl: server.url, arch: 'aarch64', cacheRoot })).rejects.toThrow(
      /install tree is for arch x86_64, not aarch64/,
    );
    expect(server.requests).toEqual(['.treeinfo']);
  });

  test('a cached file corrupted on disk is downloaded again', async () => {
    const first = await fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot });
    const fd = fs.openSync(first.kernelPath, 'r+');
    fs.writeSync(fd, Buffer.from([0x00, 0x01]), 0, 2, 10);
    fs.closeSync(fd);
    const second = await fetchInstallMedia({ treeUrl: server.url, arch: 'x86_64', cacheRoot });
    expect(second.downloaded).toBe(true);
    expect(fs.readFileSync(second.kernelPath).equals(kernel)).toBe(true);
  });

  test('an invalid tree URL is refused with the rule', async () => {
    await expect(
      fetchInstallMedia({ treeUrl: `${server.url} quiet`, arch: 'x86_64', cacheRoot }),
    ).rejects.toThrow(/must be an http\(s\) URL/);
  });
});
