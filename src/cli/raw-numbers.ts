/**
 * Numeric options are declared `type: 'number'` so --help says [number], but
 * yargs would turn "12x" into NaN, "0x10" into 16 and "1e3" into 1000 before
 * any validator saw them. This puts back the text exactly as typed, so the
 * strict grammars (src/spec/validate.ts) judge it and name it in their
 * one-line errors. A default (not typed) stays as declared.
 */

/** The values of --NAME on the command line, in order, as typed; a flag with no value gives ''. */
export function typedValues(tokens: readonly string[], name: string): string[] {
  const found: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === '--') break;
    if (token === `--${name}`) {
      const next = tokens[i + 1];
      if (next === undefined || next.startsWith('--')) found.push('');
      else {
        found.push(next);
        i++;
      }
    } else if (token.startsWith(`--${name}=`)) {
      found.push(token.slice(name.length + 3));
    }
  }
  return found;
}

function camel(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Replaces yargs' numbers by the typed text: one value a string, a repeated flag an array (which validators refuse). */
export function restoreTypedNumbers(
  argv: Record<string, unknown>,
  tokens: readonly string[],
  numberOptions: readonly string[],
): void {
  for (const name of new Set(numberOptions)) {
    if (name.length === 1 || name !== name.toLowerCase()) continue;
    const typed = typedValues(tokens, name);
    if (typed.length === 0) continue;
    const value = typed.length === 1 ? typed[0] : typed;
    argv[name] = value;
    argv[camel(name)] = value;
  }
}
