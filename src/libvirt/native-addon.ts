import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * The @unraid/libvirt native addon, loaded without the package's JavaScript
 * wrapper. The wrapper only forwards each call (turning the addon's string
 * rejections into errors); loading its ES modules cost `list` about 8 ms of
 * its start-up (docs/benchmarks.md, "CLI start-up"). This file is that
 * forwarding for the calls binding.ts makes, with the same names and
 * signatures, so either can serve BindingHypervisor.
 */

/** The part of the package's Domain class that binding.ts uses. */
export interface BindingDomain {
  getName(): Promise<string>;
  getXMLDesc(flags?: number): Promise<string>;
  getInfo(): Promise<{ state: number; maxMem: number; memory: number; nrVirtCpu: number; cpuTime?: number }>;
  create(): Promise<void>;
  shutdown(): Promise<void>;
  destroy(): Promise<void>;
}

/** The part of the package's Hypervisor class that binding.ts uses. */
export interface BindingConnection {
  connectOpen(): Promise<void>;
  connectClose(): Promise<void>;
  connectListAllDomains(flags?: number): Promise<BindingDomain[]>;
  domainLookupByName(name: string): Promise<BindingDomain>;
  domainDefineXML(xml: string): Promise<BindingDomain>;
}

export interface BindingModule {
  Hypervisor: new (options: { uri: string }) => BindingConnection;
}

/** What the addon's Hypervisor object offers; each call returns a promise, or throws a string. */
interface Addon {
  Hypervisor: new (options: { uri: string }) => NativeConnection;
}

/** The addon rejects with libvirt's message as a string: an Error, as the wrapper makes it. */
function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * The call's promise with its rejection made an Error. One `then` rather than an async function:
 * `list` makes two calls per domain, hundreds in all, and each extra promise step is main-thread time.
 */
function forward<T>(call: () => Promise<unknown>): Promise<T> {
  let pending: Promise<unknown>;
  try {
    pending = call();
  } catch (err) {
    return Promise.reject(asError(err));
  }
  return pending.then(undefined, (err: unknown) => {
    throw asError(err);
  }) as Promise<T>;
}

/** VIR_CONNECT_LIST_DOMAINS_ACTIVE | _INACTIVE: every domain, as the wrapper's default. */
const ALL_DOMAINS = 3;

type NativeConnection = Record<string, (...args: unknown[]) => Promise<unknown>>;

/** A domain handle: the connection's calls on it (one class, not closures per domain: `list` makes hundreds). */
class Domain implements BindingDomain {
  constructor(
    private readonly connection: NativeConnection,
    private readonly native: unknown,
  ) {}
  private call<T>(method: string, ...args: unknown[]): Promise<T> {
    return forward<T>(() => this.connection[method]!(this.native, ...args));
  }
  getName(): Promise<string> {
    return forward(() => this.connection.domainGetName!(this.native));
  }
  getXMLDesc(flags = 0): Promise<string> {
    return forward(() => this.connection.domainGetXMLDesc!(this.native, flags));
  }
  getInfo(): Promise<{ state: number; maxMem: number; memory: number; nrVirtCpu: number; cpuTime?: number }> {
    return forward(() => this.connection.domainGetInfo!(this.native));
  }
  create(): Promise<void> {
    return this.call('domainCreate');
  }
  shutdown(): Promise<void> {
    return this.call('domainShutdown');
  }
  destroy(): Promise<void> {
    return this.call('domainDestroy');
  }
}

/** The addon in the package's directory (`build/Release/libvirt.node`), where its wrapper requires it. */
export function loadAddon(packageDir: string): BindingModule {
  const require = createRequire(path.join(packageDir, 'package.json'));
  const addon = require(path.join(packageDir, 'build', 'Release', 'libvirt.node')) as Addon;
  class Connection implements BindingConnection {
    private readonly native: NativeConnection;
    constructor(options: { uri: string }) {
      this.native = new addon.Hypervisor(options);
    }
    private call<T>(method: string, ...args: unknown[]): Promise<T> {
      return forward<T>(() => this.native[method]!(...args));
    }
    connectOpen(): Promise<void> {
      return this.call('connectOpen');
    }
    connectClose(): Promise<void> {
      return this.call('connectClose');
    }
    async connectListAllDomains(flags = ALL_DOMAINS): Promise<BindingDomain[]> {
      return (await this.call<unknown[]>('connectListAllDomains', flags)).map(
        (d) => new Domain(this.native, d),
      );
    }
    async domainLookupByName(name: string): Promise<BindingDomain> {
      return new Domain(this.native, await this.call('domainLookupByName', name));
    }
    async domainDefineXML(xml: string): Promise<BindingDomain> {
      return new Domain(this.native, await this.call('domainDefineXML', xml));
    }
  }
  return { Hypervisor: Connection };
}
