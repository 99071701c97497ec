/**
 * The least any Node.js `list` does on a libvirt connection, for bench/cli-startup.ts: start Node,
 * load the libvirt binding's native addon as the CLI loads it (src/libvirt/native-addon.ts), open the
 * connection (the test driver parses its whole file there, as it does in virsh) and list the domains.
 * Nothing else of vm-provisioner: what is left above this in `list --json` is its own work.
 *
 *   node dist/bench/list-floor.js test:///path/to/domains.xml
 */
import { bindingPackageDir } from '../src/libvirt/early-open.js';
import { loadAddon } from '../src/libvirt/native-addon.js';

const uri = process.argv[2];
if (!uri) throw new Error('usage: list-floor.js URI');
const { Hypervisor } = loadAddon(bindingPackageDir());
const hypervisor = new Hypervisor({ uri });
await hypervisor.connectOpen();
const domains = await hypervisor.connectListAllDomains();
await hypervisor.connectClose();
process.stdout.write(`${domains.length} domains\n`);
