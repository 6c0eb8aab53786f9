/**
 * `node bench/rusage.js OUT.json SCRIPT ARGS…`: runs SCRIPT in this very process (as if started
 * with `node SCRIPT ARGS…`) and, when the process exits, writes its own resource usage
 * (process.resourceUsage(): CPU times in µs, maxRSS in KiB) to OUT.json. The figures are the
 * child's from its first instruction: Node's start-up is included, as cron would pay it.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [out, script, ...args] = process.argv.slice(2);
if (!out || !script) {
  process.stderr.write('usage: node bench/rusage.js OUT.json SCRIPT [ARGS…]\n');
  process.exit(2);
}
process.argv = [process.argv[0] ?? process.execPath, path.resolve(script), ...args];
process.on('exit', () => {
  writeFileSync(out, JSON.stringify(process.resourceUsage()));
});
await import(pathToFileURL(path.resolve(script)).href);
