import { buildBody } from '../dist/render/build.js';
import { preparePersonaliser } from '../dist/render/personalise.js';
import { createCountingTransport } from '../dist/transport/counting.js';
const body = await buildBody({ id: 1, subject: 'Hello {{name}}', templatePath: `/tmp/bt/digest-40k.mjml`, from: 'News <news@example.org>', lists: ['x'] }, { templatesRoot: '/tmp/bt', knownFields: ['city'], defaultFrom: null });
const p = preparePersonaliser(body, { newsletterId: 1, baseUrl: 'https://example.org', secret: 'bench-secret-0123456789abcdef', listNames: ['x'] });
const t = createCountingTransport();
const N = 50000; const start = performance.now();
for (let i = 0; i < N; i++) { const m = p({ deliveryId: 0, newsletterId: 1, subscriberId: i, email: `r${i}@example.net`, address: `r${i}@example.net`, name: `Reader ${i}`, fields: { city: 'Leith' }, messageId: `<m${i}@x>`, attempts: 0 }); await t.send(m); }
console.log('µs per recipient', ((performance.now() - start) * 1000 / N).toFixed(1), 'rss', (process.memoryUsage().rss / 2 ** 20) | 0);
const { compileTemplate, splitTemplate, fill, fillValues, renderSplit, escapeHtml } = await import('../dist/render/fields.js');
const split = splitTemplate(body.html); const ct = compileTemplate(split);
for (const [name, fn] of [
  ['renderSplit+byteLength', (i) => Buffer.byteLength(renderSplit(split, { name: `Reader ${i}`, city: 'Leith', email: 'x', unsubscribe_url: 'https://x/u/' + i }, escapeHtml))],
  ['fill+byteLength', (i) => Buffer.byteLength(fill(ct, fillValues(ct, { name: `Reader ${i}`, city: 'Leith', email: 'x', unsubscribe_url: 'https://x/u/' + i }, escapeHtml)))],
  ['fill only', (i) => fill(ct, fillValues(ct, { name: `Reader ${i}`, city: 'Leith', email: 'x', unsubscribe_url: 'https://x/u/' + i }, escapeHtml)).length],
]) { const s = performance.now(); let x = 0; for (let i = 0; i < 20000; i++) x += fn(i); console.log(name, ((performance.now() - s) * 1000 / 20000).toFixed(1)); }
const rec = (i) => ({ deliveryId: 0, newsletterId: 1, subscriberId: i, email: `r${i}@example.net`, address: `r${i}@example.net`, name: `Reader ${i}`, fields: { city: 'Leith' }, messageId: `<m${i}@x>`, attempts: 0 });
for (const [name, fn] of [
  ['personalise', (i) => p(rec(i)).subject.length],
  ['personalise+html.length', (i) => p(rec(i)).html.length],
  ['personalise+byteLength(html)', (i) => Buffer.byteLength(p(rec(i)).html)],
  ['personalise+byteLength(html)+text', (i) => { const m = p(rec(i)); return Buffer.byteLength(m.html) + Buffer.byteLength(m.text); }],
]) { const s = performance.now(); let x = 0; for (let i = 0; i < 20000; i++) x += fn(i); console.log(name, ((performance.now() - s) * 1000 / 20000).toFixed(1)); }
for (const [name, fn] of [
  ['personalise+fill(parts)+byteLength', (i) => { const m = p(rec(i)); return Buffer.byteLength(fill(m.parts.html.template, m.parts.html.values)); }],
  ['personalise+byteLength(html) again', (i) => Buffer.byteLength(p(rec(i)).html)],
  ['fill+byteLength again', (i) => Buffer.byteLength(fill(ct, fillValues(ct, { name: `Reader ${i}`, city: 'Leith', email: 'x', unsubscribe_url: 'https://x/u/' + i }, escapeHtml)))],
]) { const s = performance.now(); let x = 0; for (let i = 0; i < 20000; i++) x += fn(i); console.log(name, ((performance.now() - s) * 1000 / 20000).toFixed(1)); }
