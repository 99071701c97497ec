/** The SPICE viewer a VM is shown in: remote-viewer, detached from the CLI. */

/** A graphical session to show a viewer in: X11 or Wayland. */
export function hasGraphicalSession(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
}

/**
 * remote-viewer's arguments: the window title starts with `[NAME]`, as every
 * host window of the VM does (remote-viewer appends the monitor number,
 * `[NAME] (1)`); `--` keeps the URI from ever being read as an option.
 */
export function viewerArgv(spiceUri: string, name: string): string[] {
  return ['--title', `[${name}]`, '--', spiceUri];
}

/** Starts remote-viewer detached from us (it outlives the CLI); resolves with its pid once spawned. */
export async function openViewer(
  spiceUri: string,
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  // Loaded here: `start` reaches libvirt's restore without it (docs/architecture.md, "Start-up").
  const { execa } = await import('execa');
  const child = execa('remote-viewer', viewerArgv(spiceUri, name), {
    env,
    detached: true,
    stdio: 'ignore',
    reject: false,
    cleanup: false,
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  child.unref();
  // Spawned and detached: its later exit is its own business.
  child.catch(() => undefined);
  return child.pid!;
}
