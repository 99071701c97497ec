import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import {
  createSnapshot,
  deleteSnapshot,
  listSnapshots,
  revertSnapshot,
  validateSnapshotName,
  type SnapshotInfo,
  type SnapshotTickets,
} from '../../service/state.js';
import { vmName, withConnectOption, withHypervisor } from '../hypervisor.js';
import { formatColumns } from '../../util/table.js';

interface SnapArgs {
  name: string;
  snapshot: string;
  memory: boolean;
  force: boolean;
  json: boolean;
  connect: string | undefined;
}

export function formatSnapshotTable(snapshots: SnapshotInfo[]): string {
  const rows = [
    ['NAME', 'CREATED', 'STATE', 'MEMORY', 'DISKS'],
    ...snapshots.map((s) => [
      s.name,
      s.createdAt,
      s.state,
      s.memory ? 'yes' : 'no',
      s.disks.join(',') || '-',
    ]),
  ];
  return formatColumns(rows);
}

/**
 * The proxy's tickets of snapshots, through its control socket (docs/protocol.md, "Resume: tickets"):
 * best effort within 2 s, since the proxy may not run; without it a reverted agent is challenged.
 */
const proxyTickets: SnapshotTickets = {
  pin: (vm, snapshot) => ticketRequest('ticket-pin', vm, snapshot),
  rearm: (vm, snapshot) => ticketRequest('ticket-rearm', vm, snapshot),
  unpin: (vm, snapshot) => ticketRequest('ticket-unpin', vm, snapshot),
};

async function ticketRequest(op: string, vm: string, snapshot: string): Promise<void> {
  const { controlRequest } = await import('../../proxy/control-client.js');
  await controlRequest(op, { vm, snapshot }, { timeoutMs: 2_000 });
}

const named = (yargs: Argv<object>): Argv<object> =>
  withConnectOption(yargs).positional('name', { type: 'string', demandOption: true, describe: 'VM name' });
const withSnap = (yargs: Argv<object>): Argv<object> =>
  named(yargs).positional('snapshot', {
    type: 'string',
    demandOption: true,
    describe: 'snapshot name (a plain word)',
  });

const createSub: CommandModule<object, SnapArgs> = {
  command: 'create <name> <snapshot>',
  describe: 'Snapshot the disks of a stopped VM, or with --memory the disks and memory of a running one',
  builder: (yargs) =>
    withSnap(yargs).option('memory', {
      type: 'boolean',
      default: false,
      describe: 'running VM: keep its memory too, so revert resumes it as it ran',
    }) as unknown as Argv<SnapArgs>,
  handler: async (argv: ArgumentsCamelCase<SnapArgs>) => {
    const name = vmName(argv.name);
    const snapshot = validateSnapshotName(argv.snapshot);
    const info = await withHypervisor(argv.connect, (hv) =>
      createSnapshot(hv, name, snapshot, { memory: argv.memory, tickets: proxyTickets }),
    );
    process.stdout.write(
      `${name}: snapshot ${info.name} created (${info.memory ? 'disks and memory' : 'disks'}: ${info.disks.join(', ')})\n`,
    );
  },
};

const listSub: CommandModule<object, SnapArgs> = {
  command: 'list <name>',
  describe: "List a VM's snapshots",
  builder: (yargs) =>
    named(yargs).option('json', {
      type: 'boolean',
      default: false,
      describe: 'print a JSON array',
    }) as unknown as Argv<SnapArgs>,
  handler: async (argv: ArgumentsCamelCase<SnapArgs>) => {
    const name = vmName(argv.name);
    const snapshots = await withHypervisor(argv.connect, (hv) => listSnapshots(hv, name));
    if (argv.json) process.stdout.write(`${JSON.stringify(snapshots, null, 2)}\n`);
    else if (snapshots.length === 0) process.stdout.write(`${name}: no snapshots\n`);
    else process.stdout.write(`${formatSnapshotTable(snapshots)}\n`);
  },
};

const revertSub: CommandModule<object, SnapArgs> = {
  command: 'revert <name> <snapshot>',
  describe: 'Go back to a snapshot (a running, paused or saved VM needs --force: its state is lost)',
  builder: (yargs) =>
    withSnap(yargs).option('force', {
      type: 'boolean',
      default: false,
      describe: "throw away the VM's current running or saved state",
    }) as unknown as Argv<SnapArgs>,
  handler: async (argv: ArgumentsCamelCase<SnapArgs>) => {
    const name = vmName(argv.name);
    const snapshot = validateSnapshotName(argv.snapshot);
    const result = await withHypervisor(argv.connect, (hv) =>
      revertSnapshot(hv, name, snapshot, { force: argv.force, tickets: proxyTickets }),
    );
    process.stdout.write(`${name}: reverted to ${snapshot}; now ${result.state}\n`);
  },
};

const deleteSub: CommandModule<object, SnapArgs> = {
  command: 'delete <name> <snapshot>',
  describe: 'Delete a snapshot (the VM as it is now stays)',
  builder: (yargs) => withSnap(yargs) as unknown as Argv<SnapArgs>,
  handler: async (argv: ArgumentsCamelCase<SnapArgs>) => {
    const name = vmName(argv.name);
    const snapshot = validateSnapshotName(argv.snapshot);
    await withHypervisor(argv.connect, (hv) => deleteSnapshot(hv, name, snapshot, { tickets: proxyTickets }));
    process.stdout.write(`${name}: snapshot ${snapshot} deleted\n`);
  },
};

export const snapshotCommand: CommandModule<object, object> = {
  command: 'snapshot <command>',
  describe: "Snapshots of a VM's disks (and memory): create, list, revert, delete",
  builder: (yargs: Argv<object>) =>
    yargs
      .command(createSub)
      .command(listSub)
      .command(revertSub)
      .command(deleteSub)
      .demandCommand(1, 'Name a snapshot command: create, list, revert or delete.')
      .example('$0 snapshot create firefox-vm before-update', '')
      .example('$0 snapshot revert firefox-vm before-update --force', ''),
  handler: () => undefined,
};
