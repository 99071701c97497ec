import { openInVm, type OpenOptions } from '../service/files.js';
import { VmpError } from '../util/errors.js';

/**
 * `open` as the user sees it, for both `open NAME FILE` and `open --disposable`:
 * the file opened in VM `name`, its guest path printed; with writeback, each
 * version written back printed until `options.signal` ends it (`until` says
 * when that is), and a refused version is the command's error.
 */
export async function openShown(
  name: string,
  file: string,
  options: OpenOptions & { writeback: boolean },
  until: string,
): ReturnType<typeof openInVm> {
  const shown = (guestPath: string, pid: number): string =>
    `${name}: opened ${guestPath} with xdg-open (pid ${pid} in the VM)`;
  if (!options.writeback) {
    const opened = await openInVm(name, file, options);
    process.stdout.write(`${shown(opened.guestPath, opened.pid)}\n`);
    return opened;
  }
  const result = await openInVm(name, file, {
    ...options,
    onOpened: ({ guestPath, pid }) =>
      process.stdout.write(`${shown(guestPath, pid)}; saved versions replace ${file} until ${until}\n`),
    onWriteback: (event) => {
      if (event.type === 'written') process.stdout.write(`${name}: wrote ${event.bytes} bytes to ${file}\n`);
    },
  });
  if (result.end?.type === 'refused') throw new VmpError(`${name}: writeback stopped: ${result.end.message}`);
  return result;
}
