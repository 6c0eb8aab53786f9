import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BuildError } from '../../src/domain/errors.js';
import type { ClaimedDelivery, Newsletter } from '../../src/domain/types.js';
import type { BuildContext } from '../../src/engine/ports.js';
import { buildBody } from '../../src/render/build.js';
import { compileMjml } from '../../src/render/mjml.js';
import { preparePersonaliser } from '../../src/render/personalise.js';
import { verifyUnsubscribeToken } from '../../src/render/unsubscribe-token.js';
import { newsletterFixture } from '../helpers/store-fixtures.js';

const SHIPPED = fileURLToPath(new URL('../../templates/', import.meta.url));
const KNOWN = ['email', 'name', 'unsubscribe_url', 'city'];
const SECRET = 'integration secret';

function newsletter(templatePath: string, overrides: Partial<Newsletter> = {}): Newsletter {
  return newsletterFixture({
    id: 3,
    subject: 'Hello {{name}}',
    templatePath,
    from: '"Example Weekly" <news@example.org>',
    lists: ['Monthly News!'],
    ...overrides,
  });
}

function context(templatesRoot: string, overrides: Partial<BuildContext> = {}): BuildContext {
  return { templatesRoot, knownFields: KNOWN, defaultFrom: null, ...overrides };
}

async function buildError(promise: Promise<unknown>): Promise<BuildError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(BuildError);
  return error as BuildError;
}

const FOOTER = `<mj-section><mj-column><mj-text><a href="{{unsubscribe_url}}">Unsubscribe</a></mj-text></mj-column></mj-section>`;

function page(body: string, head = '<mj-title>T</mj-title>'): string {
  return `<mjml>\n  <mj-head>${head}</mj-head>\n  <mj-body>\n${body}\n  </mj-body>\n</mjml>\n`;
}

function section(text: string): string {
  return `    <mj-section><mj-column><mj-text>${text}</mj-text></mj-column></mj-section>`;
}

describe('buildBody on the shipped templates', () => {
  it.each(['welcome.mjml', 'monthly-digest.mjml'])('builds %s cleanly', async (file) => {
    const body = await buildBody(newsletter(path.join(SHIPPED, file)), context(SHIPPED));
    expect(body.html.trim()).not.toBe('');
    expect(body.text.trim()).not.toBe('');
    expect(body.html).toContain('href="{{unsubscribe_url}}"');
    expect(body.text).toContain('{{unsubscribe_url}}');
    expect(body.text).toContain('12 Harbour Street');
    expect(body.from).toBe('"Example Weekly" <news@example.org>');
    expect(body.templateHash).toMatch(/^[0-9a-f]{64}$/);
    expect(body.fields).toContain('unsubscribe_url');
    expect(body.fields.every((field) => KNOWN.includes(field))).toBe(true);
    expect(body.compiledAt).toBeGreaterThan(0);
  });

  it('uses city only in the digest', async () => {
    const digest = await buildBody(newsletter(path.join(SHIPPED, 'monthly-digest.mjml')), context(SHIPPED));
    const welcome = await buildBody(newsletter(path.join(SHIPPED, 'welcome.mjml')), context(SHIPPED));
    expect(digest.fields).toEqual(['city', 'email', 'name', 'unsubscribe_url']);
    expect(welcome.fields).toEqual(['email', 'name', 'unsubscribe_url']);
    expect(digest.templateHash).not.toBe(welcome.templateHash);
  });

  it('refuses the digest when no import provided a city column', async () => {
    const error = await buildError(
      buildBody(newsletter(path.join(SHIPPED, 'monthly-digest.mjml')), context(SHIPPED, { knownFields: [] })),
    );
    expect(error.details.join('\n')).toContain('unknown field {{city}}');
  });
});

describe('buildBody on broken templates', () => {
  let root: string;
  let outside: string;

  beforeEach(async () => {
    outside = await mkdtemp(path.join(tmpdir(), 'render-build-'));
    root = path.join(outside, 'templates');
    await mkdir(path.join(root, 'partials'), { recursive: true });
    await writeFile(path.join(root, 'partials', 'footer.mjml'), FOOTER);
    await writeFile(path.join(outside, 'outside.mjml'), section('from outside'));
  });

  afterEach(async () => {
    await rm(outside, { recursive: true, force: true });
  });

  async function template(name: string, source: string): Promise<string> {
    const file = path.join(root, name);
    await writeFile(file, source);
    return file;
  }

  it('builds a minimal valid template, with the default From', async () => {
    const file = await template(
      'ok.mjml',
      page(`${section('Hi {{ name }}')}\n<mj-include path="./partials/footer.mjml" />`),
    );
    const body = await buildBody(
      newsletter(file, { from: null }),
      context(root, { defaultFrom: 'n@example.org' }),
    );
    expect(body.from).toBe('n@example.org');
    expect(body.text).toBe('Hi {{name}}\n\nUnsubscribe <{{unsubscribe_url}}>');
  });

  it('reports every MJML validation error with its line', async () => {
    const file = await template(
      'invalid.mjml',
      page(
        [
          '    <mj-section><mj-column>',
          '      <mj-text foo="bar">Hi</mj-text>',
          '      <mj-button href="{{unsubscribe_url}}" color="notacolor">x</mj-button>',
          '      <mj-bogus />',
          '    </mj-column></mj-section>',
        ].join('\n'),
      ),
    );
    const error = await buildError(buildBody(newsletter(file), context(root)));
    expect(error.message).toContain('invalid.mjml');
    expect(error.details).toHaveLength(3);
    expect(error.details[0]).toMatch(/Line 5 of invalid\.mjml .*Attribute foo is illegal/);
    expect(error.details[1]).toMatch(/Line 6 .*notacolor/);
    expect(error.details[2]).toMatch(/Line 7 .*mj-bogus/);
  });

  it('reports errors inside an include with both files', async () => {
    await writeFile(
      path.join(root, 'partials', 'bad.mjml'),
      '<mj-section><mj-column><mj-nope /></mj-column></mj-section>',
    );
    const file = await template('uses-bad.mjml', page('<mj-include path="partials/bad.mjml" />'));
    const error = await buildError(buildBody(newsletter(file), context(root)));
    expect(error.details.join('\n')).toMatch(
      /partials\/bad\.mjml, included at line \d+ of file uses-bad\.mjml/,
    );
  });

  it('reports a structurally broken document', async () => {
    const file = await template('broken.mjml', '<mjml></mjml>');
    const error = await buildError(buildBody(newsletter(file), context(root)));
    expect(error.details.join('\n')).toMatch(/Malformed MJML/);
  });

  it('reports a missing template file', async () => {
    const error = await buildError(buildBody(newsletter(path.join(root, 'nope.mjml')), context(root)));
    expect(error.details.join('\n')).toMatch(/cannot read template .*nope\.mjml: file not found/);
  });

  it('names each unknown field and lists the known ones', async () => {
    const file = await template(
      'unknown.mjml',
      page(`${section('Dear {{firstname}} from {{ city }}')}\n<mj-include path="./partials/footer.mjml" />`),
    );
    const error = await buildError(buildBody(newsletter(file, { subject: 'For {{plan}}' }), context(root)));
    const problems = error.details.join('\n');
    expect(problems).toContain('unknown field {{firstname}} in the HTML and text');
    expect(problems).toContain('unknown field {{plan}} in the subject');
    expect(problems).toContain('known fields: city, email, name, unsubscribe_url');
    expect(problems).not.toContain('{{city}}');
  });

  it('matches fields whatever their case, and allows an unknown field that has a default', async () => {
    const file = await template(
      'defaults.mjml',
      page(
        `${section(`Dear {{FirstName}}, near {{ town | default: "your area" }} or {{Town|default:'là'}}; <a href="https://x.example/{{ town | default: "a&b" }}">x</a>`)}\n<mj-include path="./partials/footer.mjml" />`,
      ),
    );
    const known = { knownFields: [...KNOWN, 'firstname'] };
    const body = await buildBody(
      newsletter(file, { subject: 'For {{ Name }} in {{ town | default: "x" }}' }),
      context(root, known),
    );
    expect(body.fields).toEqual(['firstname', 'name', 'town', 'unsubscribe_url']);
    const personalise = preparePersonaliser(body, {
      newsletterId: 3,
      baseUrl: 'https://news.example.org',
      secret: SECRET,
      listNames: ['news'],
    });
    const message = personalise({
      deliveryId: 1,
      newsletterId: 3,
      subscriberId: 1,
      email: 'a@example.org',
      address: 'a@example.org',
      name: 'Ann',
      fields: { firstname: 'Ann & Co' },
      messageId: '<n3.x@example.org>',
      attempts: 0,
    });
    expect(message.subject).toBe('For Ann in x');
    expect(message.html).toContain('Dear Ann &amp; Co, near your area or là;');
    expect(message.html).toContain('href="https://x.example/a&amp;b"');
    expect(message.text).toMatch(/Dear Ann & Co, near your area or\s+là;/);

    // Without a default, the same unknown field stays a build error.
    const bare = await template(
      'bare.mjml',
      page(`${section('near {{ town }}')}\n<mj-include path="./partials/footer.mjml" />`),
    );
    const error = await buildError(buildBody(newsletter(bare), context(root, known)));
    expect(error.details.join('\n')).toContain('unknown field {{town}}');
  });

  it('refuses a malformed placeholder', async () => {
    const file = await template(
      'malformed.mjml',
      page(`${section('Dear {{ first-name }}')}\n<mj-include path="./partials/footer.mjml" />`),
    );
    const error = await buildError(buildBody(newsletter(file), context(root)));
    expect(error.details.join('\n')).toContain('malformed placeholder {{ first-name }} in the HTML');
  });

  it('refuses a body without the unsubscribe link', async () => {
    const file = await template('no-unsubscribe.mjml', page(section('Hello {{name}}')));
    const error = await buildError(buildBody(newsletter(file), context(root)));
    expect(error.details.join('\n')).toContain('no unsubscribe link');
  });

  it('refuses a body whose text part is empty', async () => {
    const file = await template(
      'image-only.mjml',
      page(
        '<mj-section><mj-column><mj-image src="https://example.org/a.png" href="{{unsubscribe_url}}" /></mj-column></mj-section>',
      ),
    );
    const error = await buildError(buildBody(newsletter(file), context(root)));
    expect(error.details.join('\n')).toContain('the text part is empty');
  });

  it('collects From, subject, field and link problems together', async () => {
    const file = await template('several.mjml', page(section('Dear {{nope}}')));
    const error = await buildError(
      buildBody(newsletter(file, { from: null, subject: 'Hi\r\nBcc: x@example.org' }), context(root)),
    );
    expect(error.details).toEqual([
      'no From address: pass --from to create, or set NEWSLETTER_FROM',
      'the subject contains a line break or NUL',
      'no unsubscribe link: the HTML must contain {{unsubscribe_url}} (templates/partials/footer.mjml has one)',
      expect.stringContaining('unknown field {{nope}}'),
    ]);
  });

  it('collects From problems together with compile problems', async () => {
    const file = await template(
      'bad-and-no-from.mjml',
      page('<mj-section><mj-column><mj-x /></mj-column></mj-section>'),
    );
    const error = await buildError(buildBody(newsletter(file, { from: null }), context(root)));
    expect(error.details[0]).toContain('no From address');
    expect(error.details.join('\n')).toContain('mj-x');
  });

  describe('includes stay inside the templates folder', () => {
    it.each([
      ['a parent-folder include', '../outside.mjml', /leaves the templates folder/],
      ['a deeper traversal', './partials/../../outside.mjml', /leaves the templates folder/],
      ['an absolute path outside', '__OUTSIDE__', /is outside the templates folder/],
      ['an absolute path inside', '__INSIDE__', /is absolute; write it relative/],
      ['percent-encoded traversal', '%2e%2e/outside.mjml', /percent-encoded .*"\.\.\/outside\.mjml"/],
      ['double-encoded traversal', '%252e%252e%252foutside.mjml', /percent-encoded/],
      ['a missing file', './partials/missing.mjml', /file not found/],
      ['an include without a path', null, /without a path/],
    ])('refuses %s', async (_label, includePath, problem) => {
      const resolved = includePath
        ?.replace('__OUTSIDE__', path.join(outside, 'outside.mjml'))
        .replace('__INSIDE__', path.join(root, 'partials', 'footer.mjml'));
      const tag = resolved === undefined ? '<mj-include />' : `<mj-include path="${resolved}" />`;
      const file = await template(
        'inc.mjml',
        page(`${section('Hi')}\n${tag}\n<mj-include path="./partials/footer.mjml" />`),
      );
      const error = await buildError(buildBody(newsletter(file), context(root)));
      expect(error.details).toHaveLength(1);
      expect(error.details[0]).toMatch(/^inc\.mjml line 5: /);
      expect(error.details[0]).toMatch(problem);
    });

    it('refuses a symlink that points outside, even from inside a partial', async () => {
      await symlink(path.join(outside, 'outside.mjml'), path.join(root, 'partials', 'link.mjml'));
      await writeFile(path.join(root, 'partials', 'wrapper.mjml'), '<mj-include path="./link.mjml" />');
      const file = await template(
        'sym.mjml',
        page(`${FOOTER}\n<mj-include path="./partials/wrapper.mjml" />`),
      );
      const error = await buildError(buildBody(newsletter(file), context(root)));
      expect(error.details).toEqual([
        expect.stringMatching(/^partials\/wrapper\.mjml line 1: .*symlink that leaves the templates folder/),
      ]);
    });

    it('accepts a symlink that stays inside, and a partial reaching a sibling folder', async () => {
      await mkdir(path.join(root, 'shared'));
      await writeFile(path.join(root, 'shared', 'note.mjml'), section('shared note'));
      await writeFile(path.join(root, 'partials', 'note.mjml'), '<mj-include path="../shared/note.mjml" />');
      await symlink(path.join(root, 'partials', 'footer.mjml'), path.join(root, 'partials', 'alias.mjml'));
      const file = await template(
        'fine.mjml',
        page('<mj-include path="partials/note.mjml" />\n<mj-include path="partials/alias.mjml" />'),
      );
      const body = await buildBody(newsletter(file), context(root));
      expect(body.text).toContain('shared note');
      expect(body.html).toContain('href="{{unsubscribe_url}}"');
    });

    it('refuses circular includes', async () => {
      await writeFile(path.join(root, 'partials', 'a.mjml'), '<mj-include path="./b.mjml" />');
      await writeFile(path.join(root, 'partials', 'b.mjml'), '<mj-include path="./a.mjml" />');
      const file = await template('loop.mjml', page('<mj-include path="partials/a.mjml" />'));
      const error = await buildError(buildBody(newsletter(file), context(root)));
      expect(error.details.join('\n')).toContain('circular');
    });
  });

  it('hashes the includes too', async () => {
    const file = await template('hash.mjml', page('<mj-include path="./partials/footer.mjml" />'));
    const before = await compileMjml(file, root);
    expect((await compileMjml(file, root)).templateHash).toBe(before.templateHash);
    await writeFile(path.join(root, 'partials', 'footer.mjml'), `${FOOTER}\n${section('changed')}`);
    expect((await compileMjml(file, root)).templateHash).not.toBe(before.templateHash);
  });
});

describe('personalising a built body', () => {
  function recipient(overrides: Partial<ClaimedDelivery> = {}): ClaimedDelivery {
    return {
      deliveryId: 1,
      newsletterId: 3,
      subscriberId: 42,
      email: 'Ada@Example.com',
      address: 'ada@example.com',
      name: `Ada <script>alert("x")</script> & "Co"`,
      fields: { city: 'Leith & Edinburgh' },
      messageId: '<n3.abc@example.org>',
      attempts: 0,
      ...overrides,
    };
  }

  it('fills the digest per recipient with headers, escaped values and the message id', async () => {
    const body = await buildBody(
      newsletter(path.join(SHIPPED, 'monthly-digest.mjml'), { subject: 'News for {{name}} in {{city}}' }),
      context(SHIPPED),
    );
    const personalise = preparePersonaliser(body, {
      newsletterId: 3,
      baseUrl: 'https://news.example.org/',
      secret: SECRET,
      listNames: ['Monthly News!', 'other'],
    });
    const message = personalise(recipient({ name: 'Ada\r\nBcc: x@example.org <b>' }));
    expect(message.messageId).toBe('<n3.abc@example.org>');
    expect(message.to).toBe('Ada@Example.com');
    expect(message.from).toBe('"Example Weekly" <news@example.org>');
    expect(message.subject).toBe('News for AdaBcc: x@example.org <b> in Leith & Edinburgh');

    const url = /<(https:\/\/news\.example\.org\/u\/[^>]+)>/.exec(
      message.headers['List-Unsubscribe'] ?? '',
    )?.[1];
    expect(url).toBeDefined();
    const token = url!.slice('https://news.example.org/u/'.length);
    expect(verifyUnsubscribeToken(SECRET, token)).toEqual({
      kind: 'subscriber',
      subscriberId: 42,
      newsletterId: 3,
      scope: 'lists',
    });
    expect(message.headers).toEqual({
      // No mailto without a return path that is read (NEWSLETTER_RETURN_PATH): issue 18.
      'List-Unsubscribe': `<https://news.example.org/u/${token}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      'List-Id': '<monthly-news.example.org>',
    });
    expect(message.returnPath).toBeUndefined();
    expect(message.html).toContain(`href="https://news.example.org/u/${token}"`);
    expect(message.html).toContain('Leith &amp; Edinburgh');
    expect(message.html).not.toContain('{{');
    expect(message.text).toContain(`<https://news.example.org/u/${token}>`);
    expect(message.text).toContain('Leith & Edinburgh');
    expect(message.text).not.toContain('{{');
  });

  it('with a return path: a VERP envelope sender and a mailto per delivery; test copies carry neither token', async () => {
    const body = await buildBody(newsletter(path.join(SHIPPED, 'welcome.mjml')), context(SHIPPED));
    const returnPath = { address: 'bounces@example.org', delimiter: '+' as const };
    const base = {
      newsletterId: 3,
      baseUrl: 'https://news.example.org',
      secret: SECRET,
      listNames: ['news'],
    };
    const message = preparePersonaliser(body, { ...base, returnPath })(recipient());
    expect(message.returnPath).toMatch(/^bounces\+b[a-z2-7]{26}@example\.org$/);
    expect(message.headers['List-Unsubscribe']).toMatch(
      /^<https:\/\/news\.example\.org\/u\/[^>]+>, <mailto:bounces\+u[a-z2-7]{26}@example\.org\?subject=unsubscribe>$/,
    );
    // Another delivery, another token; the From local part when no return path is set.
    const other = preparePersonaliser(body, { ...base, returnPath: { address: null, delimiter: '-' } })(
      recipient({ deliveryId: 2 }),
    );
    expect(other.returnPath).toMatch(/^news-b[a-z2-7]{26}@example\.org$/);
    expect(other.headers['List-Unsubscribe']).not.toContain('mailto:');
    const test = preparePersonaliser(body, { ...base, returnPath, testToken: true })(recipient());
    expect(test.returnPath).toBe('bounces@example.org');
    expect(test.headers['List-Unsubscribe']).not.toContain('mailto:');
  });

  it('escapes a hostile name in the HTML and keeps it verbatim in the text', async () => {
    const body = await buildBody(newsletter(path.join(SHIPPED, 'welcome.mjml')), context(SHIPPED));
    const personalise = preparePersonaliser(body, {
      newsletterId: 3,
      baseUrl: 'https://news.example.org',
      secret: SECRET,
      listNames: [],
    });
    const message = personalise(recipient({ subscriberId: null }));
    expect(message.html).toContain(
      'Welcome, Ada &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Co&quot;',
    );
    expect(message.html).not.toContain('<script>');
    expect(message.text).toContain('Welcome, Ada <script>alert("x")</script> & "Co"');
    expect(message.subject).toBe('Hello Ada <script>alert("x")</script> & "Co"');
    expect(message.headers['List-Id']).toBe('<newsletter.example.org>');
    const token = /\/u\/([^>]+)>/.exec(message.headers['List-Unsubscribe'] ?? '')?.[1] ?? '';
    expect(verifyUnsubscribeToken(SECRET, token)).toEqual({
      kind: 'subscriber',
      subscriberId: 0,
      newsletterId: 3,
      scope: 'lists',
    });
  });

  it('renders a field the recipient lacks as empty, and never lets a CSV column replace the link', async () => {
    const body = await buildBody(newsletter(path.join(SHIPPED, 'monthly-digest.mjml')), context(SHIPPED));
    const personalise = preparePersonaliser(body, {
      newsletterId: 3,
      baseUrl: 'https://news.example.org',
      secret: SECRET,
      listNames: ['digest'],
    });
    const message = personalise(
      recipient({ fields: { unsubscribe_url: 'javascript:alert(1)', email: 'x@evil.example' } }),
    );
    expect(message.html).toContain('meet-ups near .');
    expect(message.html).not.toContain('javascript:');
    expect(message.html).not.toContain('x@evil.example');
    expect(message.html).toContain('href="https://news.example.org/u/v2.42.3.');
  });
});
