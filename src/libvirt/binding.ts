import type { DomainDetails, DomainInfo, DomainState } from '../service/ports.js';
import { NotFoundError, TimeoutError } from '../util/errors.js';
import { withTimeout } from '../util/timeout.js';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { bindingPackageDir, takeEarlyProbe, type EarlyConnection } from './early-open.js';
import { libvirtError } from './errors.js';
import { loadAddon, type BindingConnection, type BindingDomain, type BindingModule } from './native-addon.js';
import { DEFAULT_TIMEOUTS, VirshHypervisor, type Timeouts } from './virsh.js';

/** virDomainState numbering, as the binding returns it. */
const STATE_NAMES: Record<number, DomainState> = {
  0: 'no state',
  1: 'running',
  2: 'idle',
  3: 'paused',
  4: 'in shutdown',
  5: 'shut off',
  6: 'crashed',
  7: 'pmsuspended',
};

/** The native binding, or undefined when it is not installed or did not build. */
export async function loadBinding(): Promise<BindingModule | undefined> {
  try {
    const module = await importHypervisorClass();
    // Constructing loads the .node file: a package without its compiled addon fails here.
    new module.Hypervisor({ uri: 'test:///default' });
    return module;
  } catch {
    return undefined;
  }
}

/**
 * The package's native addon, through native-addon.ts rather than the package's own JavaScript
 * (its entry point also loads XML helpers, xml2js and its dependencies, about 60 ms; its Hypervisor
 * class alone, about 8 ms of ES modules). Should the package lay its files out otherwise, the module
 * of its Hypervisor class beside the entry point, else the entry point.
 */
async function importHypervisorClass(): Promise<BindingModule> {
  try {
    return loadAddon(bindingPackageDir());
  } catch {
    // The package's own modules below.
  }
  try {
    return (await import(new URL('./hypervisor.js', packageEntry()).href)) as BindingModule;
  } catch {
    return (await import('@unraid/libvirt')) as BindingModule;
  }
}

/**
 * The package's entry point as `import` resolves it (it exports that alone). Where there is no
 * import.meta.resolve (jest's ES modules), the first node_modules on the lookup path that holds it.
 */
function packageEntry(): string {
  try {
    return import.meta.resolve('@unraid/libvirt');
  } catch {
    const require = createRequire(import.meta.url);
    for (const dir of require.resolve.paths('@unraid/libvirt') ?? []) {
      const entry = path.join(dir, '@unraid', 'libvirt', 'dist', 'index.js');
      if (fs.existsSync(entry)) return pathToFileURL(entry).href;
    }
    throw new Error('@unraid/libvirt is not installed');
  }
}

/**
 * The @unraid/libvirt binding for what it covers (list, define, start,
 * shutdown, destroy, XML, info, which domains have saved state); virsh, inherited, for the rest. The binding
 * runs each call on a libuv thread that a dead socket can block for good, so
 * every call has a deadline, and after one is missed the connection is
 * treated as poisoned and every later call goes through virsh.
 */
export class BindingHypervisor extends VirshHypervisor {
  override readonly backend = 'binding' as const;
  private poisoned = false;

  private constructor(
    uri: string,
    timeouts: Timeouts,
    private readonly native: BindingConnection,
  ) {
    super(uri, timeouts);
  }

  /**
   * Probes libvirtd through virsh first: connectOpen on a dead socket is the call most likely to hang.
   * libvirt's test driver (`test:///…`) runs inside this process with no daemon or socket that could
   * hang, so it skips the probe, which costs a virsh process (about 40 ms).
   */
  static async open(
    binding: BindingModule,
    uri: string,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
  ): Promise<BindingHypervisor> {
    const probe = new VirshHypervisor(uri, timeouts);
    if (!uri.startsWith('test:///')) await probe.probe(takeEarlyProbe(uri));
    const native = new binding.Hypervisor({ uri });
    const hypervisor = new BindingHypervisor(uri, timeouts, native);
    // The daemon may stop answering between the probe and this: same short deadline.
    const connect = probe.connectTimeout;
    await hypervisor.call(`connect to ${uri}`, () => native.connectOpen(), connect);
    return hypervisor;
  }

  /**
   * A connection openEarly started (src/libvirt/early-open.ts, test:/// only, so no probe is due):
   * its open awaited under the same deadline and reported as open() reports it.
   */
  static async adopt(
    early: EarlyConnection,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
  ): Promise<BindingHypervisor> {
    const hypervisor = new BindingHypervisor(early.uri, timeouts, early.native);
    await hypervisor.call(`connect to ${early.uri}`, () => early.opened, hypervisor.connectTimeout);
    return hypervisor;
  }

  private async call<T>(operation: string, work: () => Promise<T>, timeout = this.timeouts.call): Promise<T> {
    try {
      return await withTimeout(work(), timeout, `${operation} (libvirt binding)`);
    } catch (err) {
      if (err instanceof TimeoutError) {
        this.poisoned = true;
        throw err;
      }
      throw libvirtError(operation, err instanceof Error ? err.message : String(err), err);
    }
  }

  private lookup(operation: string, name: string): Promise<BindingDomain> {
    return this.call(operation, () => this.native.domainLookupByName(name));
  }

  override async listDomains(): Promise<string[]> {
    if (this.poisoned) return super.listDomains();
    return this.call('list domains', async () => {
      const domains = await this.native.connectListAllDomains();
      return Promise.all(domains.map((domain) => domain.getName()));
    });
  }

  /**
   * One listing, then each domain's definition and info through the handle it returned: a lookup by
   * name per call doubled the calls (each a hop to a libuv thread, and a round trip to libvirtd).
   * All at once, the binding queues them on libuv's threads; the domain's name is in its XML. One
   * deadline for the whole listing: a timer per call cost more than the calls on a local driver.
   */
  override async listDomainDetails(): Promise<DomainDetails[]> {
    if (this.poisoned) return super.listDomainDetails();
    return this.call('list domains with their definitions', async () => {
      const domains = await this.native.connectListAllDomains();
      // Plain promise steps, no async function per domain: hundreds of them are main-thread time.
      const details = await Promise.all(
        domains.map((domain): Promise<DomainDetails | undefined> =>
          // 2 = VIR_DOMAIN_XML_INACTIVE
          Promise.all([domain.getXMLDesc(2), domain.getInfo()]).then(
            ([inactiveXml, info]) => ({
              inactiveXml,
              info: {
                state: STATE_NAMES[info.state] ?? 'no state',
                maxMemoryKiB: info.maxMem,
                memoryKiB: info.memory,
                vcpus: info.nrVirtCpu,
              },
            }),
            (err: unknown) => {
              // Undefined by someone else while we were listing.
              const message = err instanceof Error ? err.message : String(err);
              if (libvirtError('read a domain', message) instanceof NotFoundError) return undefined;
              throw err;
            },
          ),
        ),
      );
      return details.filter((d): d is DomainDetails => d !== undefined);
    });
  }

  override async listManagedSaved(): Promise<string[]> {
    if (this.poisoned) return super.listManagedSaved();
    return this.call('list domains with saved state', async () => {
      // 256 = VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE
      const domains = await this.native.connectListAllDomains(256);
      return Promise.all(domains.map((domain) => domain.getName()));
    });
  }

  /** Through the list of domains with saved state: a `virsh dominfo` per call cost `start` a process. */
  override async hasManagedSave(name: string): Promise<boolean> {
    if (this.poisoned) return super.hasManagedSave(name);
    return (await this.listManagedSaved()).includes(name);
  }

  override async exists(name: string): Promise<boolean> {
    if (this.poisoned) return super.exists(name);
    try {
      await this.lookup(`look up domain '${name}'`, name);
      return true;
    } catch (err) {
      if ((err as Error).name === 'NotFoundError') return false;
      throw err;
    }
  }

  override async define(xml: string): Promise<void> {
    if (this.poisoned) return super.define(xml);
    await this.call('define domain', () => this.native.domainDefineXML(xml));
  }

  override async xml(name: string, options: { inactive?: boolean } = {}): Promise<string> {
    if (this.poisoned) return super.xml(name, options);
    const op = `read XML of '${name}'`;
    const domain = await this.lookup(op, name);
    // 2 = VIR_DOMAIN_XML_INACTIVE
    return this.call(op, () => domain.getXMLDesc(options.inactive ? 2 : 0));
  }

  override async info(name: string): Promise<DomainInfo> {
    if (this.poisoned) return super.info(name);
    const op = `read info of '${name}'`;
    const domain = await this.lookup(op, name);
    const info = await this.call(op, () => domain.getInfo());
    return {
      name,
      state: STATE_NAMES[info.state] ?? 'no state',
      maxMemoryKiB: info.maxMem,
      memoryKiB: info.memory,
      vcpus: info.nrVirtCpu,
      cpuTimeNs: info.cpuTime,
    };
  }

  override async start(name: string): Promise<void> {
    if (this.poisoned) return super.start(name);
    const op = `start '${name}'`;
    const domain = await this.lookup(op, name);
    await this.call(op, () => domain.create());
  }

  override async shutdown(name: string): Promise<void> {
    if (this.poisoned) return super.shutdown(name);
    const op = `shut down '${name}'`;
    const domain = await this.lookup(op, name);
    await this.call(op, () => domain.shutdown());
  }

  override async destroy(name: string): Promise<void> {
    if (this.poisoned) return super.destroy(name);
    const op = `stop '${name}'`;
    const domain = await this.lookup(op, name);
    await this.call(op, () => domain.destroy());
  }

  override async close(): Promise<void> {
    // A poisoned connection may be the thing that hangs: leave it to process exit.
    if (this.poisoned) return;
    await this.call(`disconnect from ${this.uri}`, () => this.native.connectClose());
  }
}
