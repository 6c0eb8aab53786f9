import { describe, expect, it } from 'vitest';
import { htmlToTextPart } from '../../src/render/text.js';

describe('htmlToTextPart', () => {
  it('keeps placeholders, including in links, and trims', () => {
    const text = htmlToTextPart(
      '<html><body>\n<p>Hello {{name}},</p><p><a href="{{unsubscribe_url}}">Unsubscribe</a></p>\n</body></html>',
    );
    expect(text).toBe('Hello {{name}},\n\nUnsubscribe <{{unsubscribe_url}}>');
  });

  it('normalises spaced placeholders so that wrapping can never split one', () => {
    const words = 'word '.repeat(14);
    const text = htmlToTextPart(`<p>${words}{{ unsubscribe_url }} ${words}{{  name }}</p>`);
    expect(text).toContain('{{unsubscribe_url}}');
    expect(text).toContain('{{name}}');
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(78);
  });

  it('does not break a placeholder longer than a line', () => {
    const name = `f${'x'.repeat(100)}`;
    const text = htmlToTextPart(`<p>${'word '.repeat(10)}{{${name}}} end</p>`);
    expect(text).toContain(`{{${name}}}`);
  });

  it('keeps headings in their case, skips images and hidden preview text', () => {
    const text = htmlToTextPart(
      '<div style="display:none;font-size:1px;">Preview {{name}}</div>' +
        '<h1>Welcome, {{name}}</h1><h2>News</h2><img src="https://example.org/logo.png" alt="Logo">' +
        '<table><tr><th>Header</th></tr><tr><td>Cell</td></tr></table>',
    );
    expect(text).toContain('Welcome, {{name}}');
    expect(text).toContain('News');
    expect(text).toContain('Header');
    expect(text).not.toContain('Preview');
    expect(text).not.toContain('logo');
    expect(text).not.toContain('Logo');
  });

  it('shows a link whose text is its address only once', () => {
    expect(htmlToTextPart('<a href="https://example.org/">https://example.org/</a>')).toBe(
      'https://example.org/',
    );
  });

  it('returns an empty string for HTML without text', () => {
    expect(htmlToTextPart('<html><body><img src="x.png"></body></html>')).toBe('');
  });
});
