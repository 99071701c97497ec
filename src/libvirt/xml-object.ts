/**
 * A small reader of the XML libvirt hands back (domain definitions), into the
 * object shape describeDomain reads: `@name` for attributes, a child element
 * under its name (an array when it repeats), `#` for text beside attributes or
 * children, a bare string for an element holding only text, `{}` for an empty
 * one. `list` reads every domain's definition, and a DOM library took about
 * 0.7 ms a domain and 50 ms to load; this takes a few hundredths of a
 * millisecond and loads nothing (docs/architecture.md, "Start-up").
 *
 * It accepts well-formed XML only (what libvirt writes): elements, attributes
 * in single or double quotes, text, character and the five predefined entity
 * references, comments, CDATA, processing instructions and a DOCTYPE without
 * an internal subset. Anything else is an Error naming the offset.
 */

/** This module, for src/libvirt/inspect.ts's DESCRIBE_MODULES. */
export const XML_OBJECT_MODULE: string = import.meta.url;

export type XmlValue = string | XmlObject | XmlValue[];
export interface XmlObject {
  [key: string]: XmlValue;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decode(raw: string, at: number): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);|&/g, (match, ref: string | undefined) => {
    if (ref === undefined) throw new Error(`malformed XML at offset ${at}: a bare '&'`);
    if (ref.startsWith('#x')) return String.fromCodePoint(parseInt(ref.slice(2), 16));
    if (ref.startsWith('#')) return String.fromCodePoint(parseInt(ref.slice(1), 10));
    const named = ENTITIES[ref];
    if (named === undefined) throw new Error(`malformed XML at offset ${at}: unknown entity ${match}`);
    return named;
  });
}

interface Element {
  name: string;
  attributes: [string, string][];
  children: [string, Element][];
  text: string;
}

const NAME = /[^\s/>=]+/y;
const ATTRIBUTE = /\s*([^\s/>=]+)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')/y;

export function parseXmlObject(xml: string): XmlObject {
  const fail = (at: number, what: string): never => {
    throw new Error(`malformed XML at offset ${at}: ${what}`);
  };
  const stack: Element[] = [];
  let root: Element | undefined;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt < 0 ? xml.length : lt;
    if (textEnd > i) {
      const text = xml.slice(i, textEnd);
      const top = stack.at(-1);
      if (top) top.text += decode(text, i);
      else if (text.trim() !== '') fail(i, 'text outside the root element');
    }
    if (lt < 0) break;
    i = lt;
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i + 4);
      if (end < 0) fail(i, 'an unclosed comment');
      i = end + 3;
    } else if (xml.startsWith('<![CDATA[', i)) {
      const end = xml.indexOf(']]>', i + 9);
      if (end < 0) fail(i, 'an unclosed CDATA section');
      const top = stack.at(-1) ?? fail(i, 'CDATA outside the root element');
      top.text += xml.slice(i + 9, end);
      i = end + 3;
    } else if (xml.startsWith('<?', i)) {
      const end = xml.indexOf('?>', i + 2);
      if (end < 0) fail(i, 'an unclosed processing instruction');
      i = end + 2;
    } else if (xml.startsWith('<!DOCTYPE', i)) {
      const end = xml.indexOf('>', i);
      if (end < 0 || xml.slice(i, end).includes('[')) fail(i, 'a DOCTYPE with an internal subset');
      i = end + 1;
    } else if (xml.startsWith('</', i)) {
      NAME.lastIndex = i + 2;
      const name = NAME.exec(xml)?.[0];
      const end = xml.indexOf('>', i);
      const open = stack.pop();
      if (!open || name !== open.name || end < 0 || xml.slice(NAME.lastIndex, end).trim() !== '') {
        fail(i, `a closing tag </${name ?? ''}> that does not match <${open?.name ?? ''}>`);
      }
      i = end + 1;
    } else {
      NAME.lastIndex = i + 1;
      const name = NAME.exec(xml)?.[0] ?? fail(i, 'a tag without a name');
      const element: Element = { name, attributes: [], children: [], text: '' };
      let j = NAME.lastIndex;
      for (;;) {
        ATTRIBUTE.lastIndex = j;
        const attribute = ATTRIBUTE.exec(xml);
        if (!attribute) break;
        element.attributes.push([attribute[1]!, decode(attribute[2] ?? attribute[3]!, j)]);
        j = ATTRIBUTE.lastIndex;
      }
      while (j < xml.length && /\s/.test(xml[j]!)) j++;
      const selfClosing = xml.startsWith('/>', j);
      if (!selfClosing && xml[j] !== '>') fail(j, `a malformed tag <${name}`);
      const parent = stack.at(-1);
      if (parent) parent.children.push([name, element]);
      else if (root) fail(i, 'a second root element');
      else root = element;
      if (!selfClosing) stack.push(element);
      i = j + (selfClosing ? 2 : 1);
    }
  }
  if (stack.length > 0) fail(xml.length, `<${stack.at(-1)!.name}> is not closed`);
  if (!root) fail(0, 'no root element');
  return { [root!.name]: toValue(root!) };
}

function toValue(element: Element): XmlValue {
  const text = element.text.trim() === '' ? '' : element.text;
  if (element.attributes.length === 0 && element.children.length === 0) return text === '' ? {} : text;
  const object: XmlObject = {};
  for (const [name, value] of element.attributes) object[`@${name}`] = value;
  for (const [name, child] of element.children) {
    const value = toValue(child);
    const existing = object[name];
    if (existing === undefined) object[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else object[name] = [existing, value];
  }
  if (text !== '') object['#'] = text;
  return object;
}
