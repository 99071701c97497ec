import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A deliberately tiny template renderer: `{{NAME}}` placeholders replaced from
 * a map, nothing else. Templates hold no logic, so what a reviewer reads in
 * kickstart/, templates/ and systemd/ is what the guest gets.
 */

const PLACEHOLDER = /\{\{([A-Za-z0-9_]*)\}\}/g;
const PLACEHOLDER_NAME = /^[A-Z][A-Z0-9_]*$/;

export type TemplateValues = Readonly<Record<string, string>>;

/**
 * Replaces every `{{NAME}}` in `template` with `values[NAME]`. A placeholder
 * without a value, a value without a placeholder, a malformed placeholder or a
 * stray `{{` / `}}` is an error: a typo must fail the build, not reach a VM.
 */
export function renderTemplate(template: string, values: TemplateValues, templateName = 'template'): string {
  for (const key of Object.keys(values)) {
    if (!PLACEHOLDER_NAME.test(key)) {
      throw new Error(
        `${templateName}: value name ${JSON.stringify(key)} is not a placeholder name (A-Z, 0-9, _)`,
      );
    }
  }
  const used = new Set<string>();
  const missing = new Set<string>();
  const rendered = template.replace(PLACEHOLDER, (_match, name: string) => {
    if (!PLACEHOLDER_NAME.test(name)) {
      throw new Error(`${templateName}: malformed placeholder {{${name}}}`);
    }
    if (!Object.prototype.hasOwnProperty.call(values, name)) {
      missing.add(name);
      return '';
    }
    used.add(name);
    return values[name] as string;
  });
  if (missing.size > 0) {
    throw new Error(
      `${templateName}: no value for placeholder(s) ${[...missing].map((n) => `{{${n}}}`).join(', ')}`,
    );
  }
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length > 0) {
    throw new Error(`${templateName}: value(s) ${unused.join(', ')} match no placeholder`);
  }
  // Leftover braces mean a placeholder the pattern did not recognise (e.g. `{{ NAME }}`).
  const stray = template.replace(PLACEHOLDER, '').match(/\{\{|\}\}/);
  if (stray) {
    throw new Error(`${templateName}: stray "${stray[0]}" outside a {{NAME}} placeholder`);
  }
  return rendered;
}

let packageRoot: string | undefined;

/** The directory holding package.json: templates ship beside dist/ (see "files"). */
export function findPackageRoot(): string {
  if (packageRoot) return packageRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'kickstart'))) {
      packageRoot = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir)
      throw new Error('cannot find the vm-provisioner package root (kickstart/ beside package.json)');
    dir = parent;
  }
}

const cache = new Map<string, string>();

/**
 * Reads a template shipped with the package, e.g. `kickstart/fedora.ks.tmpl`.
 * Templates are read-only package data, so callers stay deterministic.
 */
export function loadTemplate(relativePath: string): string {
  const cached = cache.get(relativePath);
  if (cached !== undefined) return cached;
  if (path.isAbsolute(relativePath) || relativePath.split(/[\\/]/).includes('..')) {
    throw new Error(`template path ${relativePath} must be relative to the package root`);
  }
  const text = fs.readFileSync(path.join(findPackageRoot(), relativePath), 'utf8');
  cache.set(relativePath, text);
  return text;
}

/** Loads and renders a packaged template in one step. */
export function renderPackagedTemplate(relativePath: string, values: TemplateValues): string {
  return renderTemplate(loadTemplate(relativePath), values, relativePath);
}
