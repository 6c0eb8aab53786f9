import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  escapeHtml,
  fieldsOf,
  NEUTRALISED_URL_PREFIX,
  neutraliseUrl,
  parseField,
  renderSplit,
  requiredFieldsOf,
  splitTemplate,
  stripHeaderBreaks,
} from '../../src/render/fields.js';

const raw = (value: string): string => value;

describe('splitTemplate and renderSplit', () => {
  it('splits literals and fields once and concatenates them back', () => {
    const split = splitTemplate('Hello {{name}}, your city is {{city}}. Bye {{name}}!');
    expect(split.literals).toEqual(['Hello ', ', your city is ', '. Bye ', '!']);
    expect(split.fields.map((field) => field.name)).toEqual(['name', 'city', 'name']);
    expect(fieldsOf(split)).toEqual(['name', 'city']);
    expect(renderSplit(split, { name: 'Ada', city: 'Leith' }, raw)).toBe(
      'Hello Ada, your city is Leith. Bye Ada!',
    );
  });

  it('accepts spaces inside the braces', () => {
    const split = splitTemplate('Hi {{ name }} and {{  _private2\t}}');
    expect(fieldsOf(split)).toEqual(['name', '_private2']);
    expect(renderSplit(split, { name: 'Ada', _private2: 'x' }, raw)).toBe('Hi Ada and x');
  });

  it('handles templates that start or end with a field, and templates with none', () => {
    expect(renderSplit(splitTemplate('{{a}}{{b}}'), { a: '1', b: '2' }, raw)).toBe('12');
    const plain = splitTemplate('no fields here { } }} {{');
    expect(plain.fields).toEqual([]);
    expect(renderSplit(plain, {}, raw)).toBe('no fields here { } }} {{');
  });

  it('reports malformed placeholders and leaves them as text', () => {
    const split = splitTemplate('A {{ first-name }} B {{}} C {{9lives}} D {{ok}}');
    expect(split.malformed).toEqual(['{{ first-name }}', '{{}}', '{{9lives}}']);
    expect(fieldsOf(split)).toEqual(['ok']);
    expect(renderSplit(split, { ok: '!' }, raw)).toBe('A {{ first-name }} B {{}} C {{9lives}} D !');
  });

  it('matches fields whatever their case: {{FirstName}} is firstname', () => {
    const split = splitTemplate('Hi {{FirstName}} {{ First_Name }} {{EMAIL}}');
    expect(fieldsOf(split)).toEqual(['firstname', 'first_name', 'email']);
    expect(renderSplit(split, { firstname: 'Ann', first_name: 'Lee', email: 'a@b.c' }, raw)).toBe(
      'Hi Ann Lee a@b.c',
    );
  });

  it('reads Liquid defaults, double or single quoted, and fills empty or absent values with them', () => {
    expect(parseField('city | default: "your area"')).toEqual({ name: 'city', default: 'your area' });
    expect(parseField("City|default:'là-bas'")).toEqual({ name: 'city', default: 'là-bas' });
    expect(parseField('city | default: ""')).toEqual({ name: 'city', default: '' });
    expect(parseField('city | default: &quot;a &amp; b&quot;')).toEqual({ name: 'city', default: 'a & b' });
    expect(parseField('city | default: your area')).toBeNull();
    expect(parseField('city | upcase')).toBeNull();
    const split = splitTemplate('near {{ city | default: "your area" }}; {{City}}.');
    expect(split.malformed).toEqual([]);
    expect(fieldsOf(split)).toEqual(['city']);
    expect(requiredFieldsOf(split)).toEqual(['city']);
    expect(renderSplit(split, { city: 'Leith' }, raw)).toBe('near Leith; Leith.');
    expect(renderSplit(split, { city: '  ' }, raw)).toBe('near your area;   .');
    expect(renderSplit(split, {}, raw)).toBe('near your area; .');
    expect(requiredFieldsOf(splitTemplate("{{ city | default: 'x' }}"))).toEqual([]);
  });

  it('escapes a default in the HTML part like any value', () => {
    const split = splitTemplate('<p>{{ city | default: "<b>&" }}</p>');
    expect(renderSplit(split, {}, escapeHtml)).toBe('<p>&lt;b&gt;&amp;</p>');
  });

  it('renders a missing value as an empty string, and never an inherited property', () => {
    const split = splitTemplate('[{{city}}][{{constructor}}][{{toString}}][{{__proto__}}]');
    expect(renderSplit(split, {}, raw)).toBe('[][][][]');
  });

  it('escapes values in HTML, not the template', () => {
    const split = splitTemplate('<p title="{{name}}">Hello <b>{{name}}</b></p>');
    const html = renderSplit(split, { name: `<script>alert("x")</script> Tom & Jerry's` }, escapeHtml);
    expect(html).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Tom &amp; Jerry&#39;s">' +
        'Hello <b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Tom &amp; Jerry&#39;s</b></p>',
    );
  });

  it('never lets a value add markup (property)', () => {
    const split = splitTemplate('<p class="x">{{v}}</p>');
    fc.assert(
      fc.property(fc.string(), (value) => {
        const html = renderSplit(split, { v: value }, escapeHtml);
        const inner = html.slice('<p class="x">'.length, -'</p>'.length);
        expect(inner).not.toMatch(/[<>"']/);
      }),
    );
  });

  it('round-trips any template without placeholders (property)', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !s.includes('{{')),
        (source) => {
          expect(renderSplit(splitTemplate(source), {}, raw)).toBe(source);
        },
      ),
    );
  });
});

describe('escapeHtml', () => {
  it('escapes the five characters that matter', () => {
    expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
    expect(escapeHtml('&amp;')).toBe('&amp;amp;');
    expect(escapeHtml('plain ascii, é and 😀')).toBe('plain ascii, é and 😀');
  });
});

describe('stripHeaderBreaks', () => {
  it('removes CR, LF, NUL, U+2028 and U+2029', () => {
    expect(stripHeaderBreaks('Hi\r\nBcc: victim@example.org\0\u2028\u2029!')).toBe(
      'HiBcc: victim@example.org!',
    );
    expect(stripHeaderBreaks('nothing to do')).toBe('nothing to do');
  });

  it('leaves no break in any input (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (value) => {
        expect(stripHeaderBreaks(value)).not.toMatch(/[\r\n\0\u2028\u2029]/);
      }),
    );
  });
});

describe('links whose start is a field', () => {
  const link = splitTemplate('<a href="{{url}}">x</a> <a class="b" HREF = \'{{url}}\'>y</a>');

  it.each([
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    ' \t\njava\tscript:alert(1)',
    '\u0001javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'vbscript:msgbox',
    'file:///etc/passwd',
  ])('neutralises %j', (value) => {
    const html = renderSplit(link, { url: value }, escapeHtml);
    expect(html).toContain(`href="${NEUTRALISED_URL_PREFIX}`);
    expect(html).toContain(`HREF = '${NEUTRALISED_URL_PREFIX}`);
    expect(neutraliseUrl(value).startsWith(NEUTRALISED_URL_PREFIX)).toBe(true);
  });

  it.each([
    'https://example.org/a?b=1',
    'HTTP://example.org',
    'mailto:someone@example.org',
    '/relative/path',
    '//example.org/x',
    'page.html#section',
    '',
  ])('keeps %j', (value) => {
    expect(renderSplit(link, { url: value }, raw)).toBe(
      `<a href="${value}">x</a> <a class="b" HREF = '${value}'>y</a>`,
    );
  });

  it('checks adjacent fields at the start of a link as one URL', () => {
    const split = splitTemplate('<a href="{{a}}{{b}}">x</a>');
    expect(renderSplit(split, { a: 'javascript', b: ':alert(1)' }, raw)).toBe(
      `<a href="${NEUTRALISED_URL_PREFIX}javascript:alert(1)">x</a>`,
    );
    expect(renderSplit(split, { a: 'https://example.org', b: '/x' }, raw)).toBe(
      '<a href="https://example.org/x">x</a>',
    );
  });

  it('leaves a field alone when the template fixes the scheme or it is not in a link', () => {
    const split = splitTemplate(
      '<a href="https://example.org/{{v}}">{{v}}</a> <p data-href="{{v}}">{{v}}</p>',
    );
    expect(renderSplit(split, { v: 'javascript:x' }, raw)).toBe(
      '<a href="https://example.org/javascript:x">javascript:x</a> <p data-href="javascript:x">javascript:x</p>',
    );
  });
});
