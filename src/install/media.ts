import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Arch } from '../spec/types.js';
import { isSupportedRelease } from '../spec/releases.js';
import { InputError, ServiceUnavailableError, TimeoutError, VmpError } from '../util/errors.js';
import { cacheDir } from '../util/paths.js';
import { validateTreeUrl } from './cmdline.js';
import { parseTreeInfo, type TreeImage, type TreeInfo } from './treeinfo.js';

/**
 * Install media: the tree's PXE kernel and initrd, downloaded once, verified
 * against the sha256 sums the tree's .treeinfo publishes, and cached per tree
 * URL so later installs from the same tree download nothing. Files are
 * written to a temporary name in the cache directory, verified, then renamed:
 * a cut, stalled or corrupt download never lands under the final name.
 */

export class ChecksumMismatchError extends VmpError {}

export type MediaFile = 'treeinfo' | 'kernel' | 'initrd';

export interface DownloadProgress {
  file: MediaFile;
  url: string;
  receivedBytes: number;
  /** From Content-Length; undefined when the server does not say. */
  totalBytes: number | undefined;
}

export interface FetchMediaOptions {
  /** The install tree (validated by validateTreeUrl). */
  treeUrl: string;
  arch: Arch;
  /** Default: <cacheDir()>/install-media. */
  cacheRoot?: string;
  onProgress?: (progress: DownloadProgress) => void;
  /** Time allowed to open the TCP connection. Default 15 s. */
  connectTimeoutMs?: number;
  /** Time allowed without a byte arriving (headers or body). Default 30 s. */
  stallTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface InstallMedia {
  treeUrl: string;
  kernelPath: string;
  initrdPath: string;
  /** The cache directory for this tree. */
  dir: string;
  /** False when both files came from the cache (nothing was downloaded). */
  downloaded: boolean;
}

const FEDORA_MIRROR = 'https://download.fedoraproject.org/pub/fedora/linux/releases';
const MAX_REDIRECTS = 5;
const MAX_TREEINFO_BYTES = 1 << 20;

/** The Fedora Everything tree for a release and arch on Fedora's mirror redirector. */
export function defaultTreeUrl(release: number, arch: Arch): string {
  if (!isSupportedRelease(release))
    throw new InputError(`Fedora release ${release} is not one of the supported releases`);
  return `${FEDORA_MIRROR}/${release}/Everything/${arch}/os/`;
}

/** The cache directory for a tree: a hash of the normalised URL and arch. */
export function mediaCacheDir(
  treeUrl: string,
  arch: Arch,
  cacheRoot = path.join(cacheDir(), 'install-media'),
): string {
  const key = createHash('sha256')
    .update(`${validateTreeUrl(treeUrl)}\n${arch}`)
    .digest('hex')
    .slice(0, 20);
  return path.join(cacheRoot, key);
}

interface CacheRecord {
  treeUrl: string;
  arch: Arch;
  kernel: TreeImage;
  initrd: TreeImage;
}

const KERNEL_NAME = 'vmlinuz';
const INITRD_NAME = 'initrd.img';
const RECORD_NAME = 'media.json';

/** Returns the tree's kernel and initrd from the cache, downloading and verifying them when needed. */
export async function fetchInstallMedia(options: FetchMediaOptions): Promise<InstallMedia> {
  const treeUrl = validateTreeUrl(options.treeUrl);
  const dir = mediaCacheDir(treeUrl, options.arch, options.cacheRoot);
  const kernelPath = path.join(dir, KERNEL_NAME);
  const initrdPath = path.join(dir, INITRD_NAME);

  const cached = await readCacheRecord(dir, treeUrl, options.arch);
  if (
    cached &&
    (await fileHasSha256(kernelPath, cached.kernel.sha256)) &&
    (await fileHasSha256(initrdPath, cached.initrd.sha256))
  ) {
    return { treeUrl, kernelPath, initrdPath, dir, downloaded: false };
  }

  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  const net = httpOptions(options);
  const treeinfoText = (
    await download(new URL('.treeinfo', treeUrl).href, 'treeinfo', net, { maxBytes: MAX_TREEINFO_BYTES })
  ).toString('utf8');
  let info: TreeInfo;
  try {
    info = parseTreeInfo(treeinfoText, options.arch);
  } catch (err) {
    throw new VmpError(`install tree ${treeUrl}: ${(err as Error).message}`, { cause: err });
  }
  await downloadVerified(
    new URL(info.kernel.path, treeUrl).href,
    'kernel',
    info.kernel.sha256,
    kernelPath,
    net,
  );
  await downloadVerified(
    new URL(info.initrd.path, treeUrl).href,
    'initrd',
    info.initrd.sha256,
    initrdPath,
    net,
  );
  const record: CacheRecord = { treeUrl, arch: options.arch, kernel: info.kernel, initrd: info.initrd };
  await writeAtomically(path.join(dir, RECORD_NAME), JSON.stringify(record, null, 2) + '\n');
  return { treeUrl, kernelPath, initrdPath, dir, downloaded: true };
}

async function readCacheRecord(dir: string, treeUrl: string, arch: Arch): Promise<CacheRecord | undefined> {
  try {
    const record = JSON.parse(await fs.readFile(path.join(dir, RECORD_NAME), 'utf8')) as CacheRecord;
    if (record.treeUrl !== treeUrl || record.arch !== arch) return undefined;
    if (
      !/^[0-9a-f]{64}$/.test(record.kernel?.sha256 ?? '') ||
      !/^[0-9a-f]{64}$/.test(record.initrd?.sha256 ?? '')
    )
      return undefined;
    return record;
  } catch {
    return undefined;
  }
}

/** True when the file exists and hashes to `sha256`. */
export async function fileHasSha256(file: string, sha256: string): Promise<boolean> {
  try {
    return (await sha256File(file)) === sha256;
  } catch {
    return false;
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function writeAtomically(target: string, content: string): Promise<void> {
  const tmp = `${target}.${randomBytes(6).toString('hex')}.part`;
  try {
    await fs.writeFile(tmp, content, { flag: 'wx', mode: 0o644 });
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

interface HttpOptions {
  connectTimeoutMs: number;
  stallTimeoutMs: number;
  signal: AbortSignal | undefined;
  onProgress: ((progress: DownloadProgress) => void) | undefined;
}

function httpOptions(options: FetchMediaOptions): HttpOptions {
  return {
    connectTimeoutMs: options.connectTimeoutMs ?? 15_000,
    stallTimeoutMs: options.stallTimeoutMs ?? 30_000,
    signal: options.signal,
    onProgress: options.onProgress,
  };
}

async function downloadVerified(
  url: string,
  file: MediaFile,
  sha256: string,
  target: string,
  options: HttpOptions,
): Promise<void> {
  const tmp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${randomBytes(6).toString('hex')}.part`,
  );
  try {
    const handle = await fs.open(tmp, 'wx', 0o644);
    const hash = createHash('sha256');
    try {
      await download(url, file, options, {
        sink: async (chunk) => {
          hash.update(chunk);
          await handle.write(chunk);
        },
      });
      await handle.sync();
    } finally {
      await handle.close();
    }
    const actual = hash.digest('hex');
    if (actual !== sha256) {
      throw new ChecksumMismatchError(`${url} has sha256 ${actual}, but the tree's .treeinfo says ${sha256}`);
    }
    await fs.rename(tmp, target);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

interface DownloadSink {
  /** Receives the body; without it the body is collected and returned. */
  sink?: (chunk: Buffer) => Promise<void>;
  maxBytes?: number;
}

/** GETs `url`, following http(s) redirects, with connect and stall timeouts. */
async function download(
  url: string,
  file: MediaFile,
  options: HttpOptions,
  how: DownloadSink,
): Promise<Buffer> {
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const result = await getOnce(current, file, options, how);
    if (result.kind === 'body') return result.body;
    let next: URL;
    try {
      next = new URL(result.location, current);
    } catch {
      throw new ServiceUnavailableError(
        `${current} redirects to an invalid URL ${JSON.stringify(result.location)}`,
      );
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') {
      throw new ServiceUnavailableError(
        `${current} redirects to ${next.protocol} URL ${next.href}; only http and https are followed`,
      );
    }
    current = next.href;
  }
  throw new ServiceUnavailableError(`${url}: more than ${MAX_REDIRECTS} redirects`);
}

type GetResult = { kind: 'body'; body: Buffer } | { kind: 'redirect'; location: string };

function getOnce(url: string, file: MediaFile, options: HttpOptions, how: DownloadSink): Promise<GetResult> {
  return new Promise<GetResult>((resolve, reject) => {
    const target = new URL(url);
    const client = target.protocol === 'https:' ? https : target.protocol === 'http:' ? http : undefined;
    if (!client) {
      reject(new ServiceUnavailableError(`${url}: only http and https are supported`));
      return;
    }
    let settled = false;
    let failure: Error | undefined;
    const fail = (err: Error): void => {
      failure ??= err;
      req.destroy(failure);
    };
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      fn();
    };
    const req = client.get(target, {
      signal: options.signal,
      headers: { 'user-agent': 'vm-provisioner', 'accept-encoding': 'identity' },
    });
    const connectTimer = setTimeout(
      () => fail(new TimeoutError(`${url}: no connection within ${options.connectTimeoutMs} ms`)),
      options.connectTimeoutMs,
    );
    req.on('socket', (socket) => {
      if (!socket.connecting) clearTimeout(connectTimer);
      else socket.once('connect', () => clearTimeout(connectTimer));
    });
    // Socket idle timeout: covers waiting for the headers and a body that stops flowing.
    req.setTimeout(options.stallTimeoutMs, () =>
      fail(new TimeoutError(`${url}: no data for ${options.stallTimeoutMs} ms (download stalled)`)),
    );
    req.on('error', (err) => {
      finish(() => {
        const cause = failure ?? err;
        if (cause instanceof VmpError) reject(cause);
        else if (cause.name === 'AbortError') reject(new VmpError(`${url}: download cancelled`, { cause }));
        else reject(new ServiceUnavailableError(`cannot download ${url}: ${cause.message}`, { cause }));
      });
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if ([301, 302, 303, 307, 308].includes(status)) {
        res.resume();
        const location = res.headers.location;
        if (!location) {
          fail(new ServiceUnavailableError(`${url}: HTTP ${status} without a Location header`));
          return;
        }
        res.on('end', () => finish(() => resolve({ kind: 'redirect', location })));
        return;
      }
      if (status !== 200) {
        res.resume();
        fail(
          new ServiceUnavailableError(
            `cannot download ${url}: HTTP ${status} ${res.statusMessage ?? ''}`.trimEnd(),
          ),
        );
        return;
      }
      const lengthHeader = res.headers['content-length'];
      const totalBytes =
        lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
      if (how.maxBytes !== undefined && totalBytes !== undefined && totalBytes > how.maxBytes) {
        fail(
          new ServiceUnavailableError(`${url} is ${totalBytes} bytes, more than the ${how.maxBytes} allowed`),
        );
        return;
      }
      const chunks: Buffer[] = [];
      let received = 0;
      options.onProgress?.({ file, url, receivedBytes: 0, totalBytes });
      void (async () => {
        try {
          for await (const chunk of res) {
            const buf = chunk as Buffer;
            received += buf.length;
            if (how.maxBytes !== undefined && received > how.maxBytes) {
              throw new ServiceUnavailableError(`${url} is more than the ${how.maxBytes} bytes allowed`);
            }
            if (how.sink) await how.sink(buf);
            else chunks.push(buf);
            options.onProgress?.({ file, url, receivedBytes: received, totalBytes });
          }
          if (failure) throw failure;
          // A connection closed early ends the stream without an error on some Node versions.
          if (!res.complete || (totalBytes !== undefined && received !== totalBytes)) {
            throw new ServiceUnavailableError(
              `${url}: connection closed after ${received} of ${totalBytes ?? '?'} bytes`,
            );
          }
          finish(() => resolve({ kind: 'body', body: Buffer.concat(chunks) }));
        } catch (err) {
          const cause = failure ?? (err as Error);
          fail(cause);
          finish(() => {
            if (cause instanceof VmpError) reject(cause);
            else reject(new ServiceUnavailableError(`cannot download ${url}: ${cause.message}`, { cause }));
          });
        }
      })();
    });
  });
}
