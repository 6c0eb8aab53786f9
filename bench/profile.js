/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self time per function
 * and per area (our code by folder, each npm package, Node internals, native, GC, idle).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export function summariseProfile(file, root) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map();
  // Sample i lasted timeDeltas[i + 1] (the delta recorded before the next sample).
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i + 1] ?? 0;
    const id = profile.samples[i];
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + delta);
  }
  const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);
  const functions = new Map();
  const areas = new Map();
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const where = locate(frame.url, root);
    const name = frame.functionName || '(anonymous)';
    const key = `${name} ${where.file}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    functions.set(key, (functions.get(key) ?? 0) + micros);
    const area = frame.url ? where.area : areaOfNative(name);
    areas.set(area, (areas.get(area) ?? 0) + micros);
  }
  const top = (map, n) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, micros]) => ({ name, ms: Math.round(micros / 1000), share: micros / total }));
  return { totalMs: Math.round(total / 1000), functions: top(functions, 15), areas: top(areas, 12) };
}

function areaOfNative(name) {
  if (name === '(idle)') return '(idle)';
  if (name === '(garbage collector)') return '(garbage collector)';
  if (name === '(program)') return '(program: native, not JS)';
  return `(native) ${name}`;
}

function locate(url, root) {
  if (!url) return { file: '', area: '' };
  const file = url.replace(/^file:\/\//, '');
  if (file.startsWith('node:')) return { file, area: `node: ${file.slice(5).split('/')[0]}` };
  const nm = file.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = file.slice(nm + '/node_modules/'.length).split('/');
    const pkg = rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
    return { file: `${pkg}/${rest.slice(pkg?.startsWith('@') ? 2 : 1).join('/')}`, area: `npm: ${pkg}` };
  }
  const relative = path.relative(root, file);
  const parts = relative.split(path.sep);
  const area = parts[0] === 'dist' ? `ours: ${parts[1]}${parts.length > 3 ? `/${parts[2]}` : ''}` : relative;
  return { file: relative, area };
}

export function profileTable(summary) {
  const lines = ['| self time | share | function (file:line) |', '| ---: | ---: | --- |'];
  for (const entry of summary.functions) {
    lines.push(`| ${entry.ms} ms | ${(entry.share * 100).toFixed(1)} % | \`${entry.name}\` |`);
  }
  lines.push('', '| area | self time | share |', '| --- | ---: | ---: |');
  for (const entry of summary.areas) {
    lines.push(`| ${entry.name} | ${entry.ms} ms | ${(entry.share * 100).toFixed(1)} % |`);
  }
  return lines.join('\n');
}
