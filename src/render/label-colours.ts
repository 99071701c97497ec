import type { Label } from '../spec/types.js';

/**
 * Qubes' label colours (the Tango palette its labels use): one table for every
 * place a VM's trust colour is drawn, the border of its seamless windows
 * (src/seamless/client.ts) and its launchers' icons (./desktop-entry.ts).
 */
export const LABEL_COLOURS: Readonly<Record<Label, string>> = {
  red: '#cc0000',
  orange: '#f57900',
  yellow: '#edd400',
  green: '#73d216',
  blue: '#3465a4',
  purple: '#75507b',
  gray: '#555753',
  black: '#000000',
};
