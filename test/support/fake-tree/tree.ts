import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/**
 * A fake Fedora install tree for tests: the files of a tree served over HTTP
 * on loopback (port 0), with a .treeinfo in the productmd format Fedora
 * publishes, and hooks to make a path misbehave (stall, redirect, cut short).
 */

export const TREE_PREFIX = '/pub/fedora/linux/releases/41/Everything/x86_64/os/';

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A .treeinfo as Fedora composes write it, for the given kernel and initrd. */
export function fedoraTreeinfo(kernel: Buffer, initrd: Buffer, arch = 'x86_64'): string {
  return `[checksums]
images/boot.iso = sha256:${'0'.repeat(64)}
images/pxeboot/initrd.img = sha256:${sha256(initrd)}
images/pxeboot/vmlinuz = sha256:${sha256(kernel)}

[general]
; WARNING.0 = This section provides compatibility with pre-productmd treeinfos.
arch = ${arch}
family = Fedora
name = Fedora 41
platforms = ${arch},xen
version = 41

[header]
type = productmd.treeinfo
version = 1.2

[images-${arch}]
boot.iso = images/boot.iso
initrd = images/pxeboot/initrd.img
kernel = images/pxeboot/vmlinuz

[images-xen]
initrd = images/pxeboot/initrd.img
kernel = images/pxeboot/vmlinuz

[release]
name = Fedora
short = Fedora
version = 41

[stage2]
mainimage = images/install.img

[tree]
arch = ${arch}
build_timestamp = 1729000000
platforms = ${arch},xen
variants = Everything
`;
}

export type Hook = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer | undefined) => void;

export interface FakeTreeServer {
  /** The tree URL (ends in '/'). */
  url: string;
  origin: string;
  /** Paths requested, in order (tree-relative where under the tree). */
  requests: string[];
  /** Make a tree-relative path misbehave; remove with `hooks.delete(path)`. */
  hooks: Map<string, Hook>;
  files: Map<string, Buffer>;
  close(): Promise<void>;
}

/** Serves `files` (tree-relative path -> content) under TREE_PREFIX on 127.0.0.1, port 0. */
export async function serveTree(files: Map<string, Buffer>): Promise<FakeTreeServer> {
  const requests: string[] = [];
  const hooks = new Map<string, Hook>();
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const urlPath = new URL(req.url ?? '/', 'http://x').pathname;
    const rel = urlPath.startsWith(TREE_PREFIX) ? urlPath.slice(TREE_PREFIX.length) : urlPath;
    requests.push(rel);
    const body = files.get(rel);
    const hook = hooks.get(rel);
    if (hook) {
      hook(req, res, body);
      return;
    }
    if (!body) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    res.end(body);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}${TREE_PREFIX}`,
    origin,
    requests,
    hooks,
    files,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A tree of the given kernel/initrd bytes with a matching .treeinfo. */
export function treeFiles(kernel: Buffer, initrd: Buffer): Map<string, Buffer> {
  return new Map([
    ['.treeinfo', Buffer.from(fedoraTreeinfo(kernel, initrd))],
    ['images/pxeboot/vmlinuz', kernel],
    ['images/pxeboot/initrd.img', initrd],
  ]);
}

export interface FakeInstaller {
  kernelPath: string;
  initrdPath: string;
}

/**
 * The fake installer's kernel (Debian's) and initrd (busybox + init.sh),
 * built by build.sh and cached by its inputs. Needs apt lists (apt-get update).
 */
export function buildFakeInstaller(): FakeInstaller {
  const script = path.resolve('test/support/fake-tree/build.sh');
  const out = execFileSync('bash', [script], {
    encoding: 'utf8',
    timeout: 10 * 60_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
    .trim()
    .split('\n')
    .pop()!;
  const kernelPath = path.join(out, 'images/pxeboot/vmlinuz');
  const initrdPath = path.join(out, 'images/pxeboot/initrd.img');
  if (!fs.existsSync(kernelPath) || !fs.existsSync(initrdPath))
    throw new Error(`build.sh printed ${out}, which lacks the images`);
  return { kernelPath, initrdPath };
}
