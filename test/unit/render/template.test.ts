import { loadTemplate, renderTemplate } from '../../../src/render/template.js';

describe('renderTemplate', () => {
  test('replaces every placeholder, including repeats', () => {
    expect(renderTemplate('a={{A}} b={{B_2}} a={{A}}', { A: 'x', B_2: 'y' })).toBe('a=x b=y a=x');
  });

  test('does not re-expand placeholders that appear inside values', () => {
    expect(renderTemplate('{{A}}|{{B}}', { A: '{{B}}', B: 'b' })).toBe('{{B}}|b');
  });

  test('an unknown placeholder is an error naming it', () => {
    expect(() => renderTemplate('x {{MISSING}} y', {}, 't.tmpl')).toThrow(
      't.tmpl: no value for placeholder(s) {{MISSING}}',
    );
  });

  test('a value that matches no placeholder is an error', () => {
    expect(() => renderTemplate('x {{A}}', { A: '1', TYPO: '2' })).toThrow(
      'value(s) TYPO match no placeholder',
    );
  });

  test('malformed placeholders and stray braces are errors', () => {
    expect(() => renderTemplate('{{lower}}', {}, 't')).toThrow('malformed placeholder {{lower}}');
    expect(() => renderTemplate('{{ A }}', {}, 't')).toThrow('stray "{{"');
    expect(() => renderTemplate('x }} y', {}, 't')).toThrow('stray "}}"');
  });

  test('value names must be placeholder names', () => {
    expect(() => renderTemplate('x', { 'a-b': '1' })).toThrow('is not a placeholder name');
  });

  test('$ and other replacement-pattern characters in values are literal', () => {
    expect(renderTemplate('p={{P}}', { P: "$6$&$'$`$$" })).toBe("p=$6$&$'$`$$");
  });
});

describe('loadTemplate', () => {
  test('reads packaged templates', () => {
    expect(loadTemplate('kickstart/fedora.ks.tmpl')).toMatch(/^%packages$/m);
  });

  test('refuses paths that leave the package', () => {
    expect(() => loadTemplate('../etc/passwd')).toThrow('must be relative to the package root');
    expect(() => loadTemplate('/etc/passwd')).toThrow('must be relative to the package root');
  });
});
