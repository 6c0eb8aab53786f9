// Writes man/newsletter.1 from the built program: `npm run build` runs this after tsc, so the
// manual lists exactly the commands and options of the code beside it. package.json's "man"
// field installs the page (`man newsletter`) with `npm install -g`.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { exitCodeRows, manPage } from '../dist/cli/man-page.js';
import { buildProgram } from '../dist/cli/program.js';

const root = new URL('../', import.meta.url);
const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
// SOURCE_DATE_EPOCH (reproducible builds) when set, so that two builds of one commit are equal.
const epoch = process.env.SOURCE_DATE_EPOCH;
const date = new Date(epoch ? Number(epoch) * 1000 : Date.now()).toISOString().slice(0, 10);

mkdirSync(new URL('man/', root), { recursive: true });
const exitCodes = exitCodeRows(readFileSync(new URL('README.md', root), 'utf8'));
writeFileSync(new URL('man/newsletter.1', root), manPage(buildProgram(), { date, version, exitCodes }));
