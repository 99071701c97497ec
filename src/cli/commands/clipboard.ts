import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { MAX_CLIPBOARD_BYTES } from '../../protocol/index.js';
import { controlRequest, type ClipboardResult } from '../../proxy/control-client.js';
import {
  readHostClipboard,
  TEXT_MIME,
  validateMimeType,
  writeHostClipboard,
} from '../../proxy/host-clipboard.js';
import { FileConfigStore } from '../../spec/store.js';
import { validateVmName } from '../../spec/validate.js';
import { InputError } from '../../util/errors.js';
import type { ConfigStore } from '../../service/ports.js';

interface ClipboardFlags {
  action: string;
  name: string;
  socket?: string;
}

/** Clipboard moves only when asked, and only for VMs whose config says enable_clipboard = true. */
export async function requireClipboardEnabled(
  store: Pick<ConfigStore, 'read' | 'pathOf'>,
  name: string,
): Promise<void> {
  const spec = await store.read(name);
  if (!spec.enableClipboard) {
    throw new InputError(
      `clipboard is disabled for VM "${name}": set enable_clipboard = true in ${store.pathOf(name)}`,
    );
  }
}

export const clipboardCommand: CommandModule<object, ClipboardFlags> = {
  command: 'clipboard <action> <name>',
  describe: "Copy a VM's clipboard to the host (copy) or the host's clipboard into a VM (paste)",
  builder: (yargs: Argv<object>) =>
    yargs
      .usage('$0 clipboard copy|paste NAME')
      .positional('action', {
        type: 'string',
        choices: ['copy', 'paste'],
        describe: 'copy: guest → host; paste: host → guest',
      })
      .positional('name', { type: 'string', describe: 'VM name' })
      .option('socket', {
        type: 'string',
        describe: "the proxy's control socket",
        defaultDescription: '$XDG_RUNTIME_DIR/vm-provisioner/proxy.sock',
      })
      .example('$0 clipboard copy firefox-vm', "the guest's clipboard into the host's")
      .example('$0 clipboard paste firefox-vm', "the host's clipboard into the guest's")
      .strictOptions() as unknown as Argv<ClipboardFlags>,
  handler: async (argv: ArgumentsCamelCase<ClipboardFlags>) => {
    const name = validateVmName(argv.name);
    await requireClipboardEnabled(new FileConfigStore(), name);
    const options = { socketPath: argv.socket };
    if (argv.action === 'copy') {
      const result = await controlRequest<ClipboardResult>('clipboard-copy', { vm: name }, options);
      const mime = validateMimeType(result.mimeType);
      const data = Buffer.from(result.data, 'base64');
      if (data.length > MAX_CLIPBOARD_BYTES) {
        throw new InputError(
          `the clipboard of VM "${name}" is ${data.length} bytes; the limit is ${MAX_CLIPBOARD_BYTES}`,
        );
      }
      await writeHostClipboard(data, mime);
      process.stderr.write(`copied ${data.length} bytes from ${name}'s clipboard\n`);
    } else {
      const data = await readHostClipboard(TEXT_MIME);
      await controlRequest(
        'clipboard-paste',
        { vm: name, mimeType: TEXT_MIME, data: data.toString('base64') },
        options,
      );
      process.stderr.write(`pasted ${data.length} bytes into ${name}'s clipboard\n`);
    }
  },
};
