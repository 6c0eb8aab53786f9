/**
 * Loads mjml without the HTTP client its HTML parser drags in.
 *
 * mjml-core and juice each require cheerio, and cheerio requires undici at its top for
 * `fromURL`, a function mjml never calls. Two copies of undici (cheerio's and juice's own), about
 * 200 files, were a third of mjml's load: ~120 ms of CPU in every run that builds a body
 * (bench/NOTES.md, "Issue 17 (session 6): start-up"). So, while mjml loads, the module cache holds
 * a stand-in for each copy that cheerio would load, through Node's documented `require.cache`; the
 * stand-in loads the real undici on first use, so `fromURL` would still work. The stand-ins leave
 * the cache as soon as mjml is loaded: anything that requires undici later gets the real one.
 *
 * Nothing mjml produces depends on this: the same HTML, byte for byte
 * (test/integration/render-mjml-loader.test.ts). If mjml's dependencies move and a path no longer
 * resolves, mjml simply loads as it is, undici and all.
 */
import Module, { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type Mjml2Html = typeof import('mjml')['default'];

/**
 * mjml's compile function. An `import()`, as before (tests count compiles by mocking 'mjml');
 * the stand-ins are in the cache for as long as it takes, which is mjml's whole synchronous
 * CommonJS tree. Call it once and keep the promise: a second call only finds mjml cached.
 */
export async function importMjml(): Promise<Mjml2Html> {
  const standIns = deferUndici();
  try {
    return (await import('mjml')).default;
  } finally {
    for (const [file, standIn] of standIns) {
      if (require.cache[file] === standIn) delete require.cache[file];
    }
  }
}

/** The undici files the cheerio copies under mjml would require, each with its stand-in in the cache. */
function deferUndici(): Map<string, NodeJS.Module> {
  const standIns = new Map<string, NodeJS.Module>();
  for (const file of undiciOfCheerio()) {
    // Already loaded by something else: nothing to save, and the real one stays.
    if (require.cache[file] !== undefined) continue;
    const standIn = new Module(file) as NodeJS.Module;
    standIn.filename = file;
    standIn.loaded = true;
    standIn.exports = lazyModule(file, standIn);
    require.cache[file] = standIn;
    standIns.set(file, standIn);
  }
  return standIns;
}

/**
 * mjml → mjml-core → cheerio → undici, and mjml-core → juice → juice's cheerio → its undici,
 * resolved the way each requiring file would. Whatever does not resolve is left out.
 */
function undiciOfCheerio(): string[] {
  const from = (file: string | null, request: string): string | null => {
    try {
      return (file === null ? require : createRequire(file)).resolve(request);
    } catch {
      return null;
    }
  };
  const mjml = from(null, 'mjml');
  const core = mjml && from(mjml, 'mjml-core');
  const juice = core && from(core, 'juice');
  const cheerios = [core && from(core, 'cheerio'), juice && from(juice, 'cheerio')];
  const files = cheerios.map((cheerio) => cheerio && from(cheerio, 'undici'));
  return [...new Set(files.filter((file): file is string => file !== null && file !== ''))];
}

/**
 * What cheerio's `__importStar(require("undici"))` receives: marked as an ES module so it is used
 * as it is, and every other look at it loads the real undici (out of the cache first, if the
 * stand-in is still there) and answers from that.
 */
function lazyModule(file: string, standIn: NodeJS.Module): object {
  let real: Record<PropertyKey, unknown> | undefined;
  const load = (): Record<PropertyKey, unknown> => {
    if (real === undefined) {
      if (require.cache[file] === standIn) delete require.cache[file];
      real = require(file) as Record<PropertyKey, unknown>;
    }
    return real;
  };
  return new Proxy(
    {},
    {
      get: (_target, key) => (key === '__esModule' ? true : Reflect.get(load(), key)),
      has: (_target, key) => key === '__esModule' || Reflect.has(load(), key),
      ownKeys: () => Reflect.ownKeys(load()),
      getOwnPropertyDescriptor: (_target, key) => {
        const descriptor = Reflect.getOwnPropertyDescriptor(load(), key);
        // A proxy may not report a property its (empty) target lacks as non-configurable.
        return descriptor === undefined ? undefined : { ...descriptor, configurable: true };
      },
    },
  );
}
