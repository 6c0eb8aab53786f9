import { spawnSync } from 'node:child_process';
const env = { PATH: process.env.PATH, HOME: '/tmp/newsletter-bench-idle-VyWfcJ', NEWSLETTER_DATABASE: '/tmp/newsletter-bench-idle-VyWfcJ/newsletter.db', NEWSLETTER_HOST_ID: 'bench-host', NEWSLETTER_TRANSPORT: 'smtp://127.0.0.1:2525', NEWSLETTER_SECRET: 'bench-secret-0123456789abcdef', NEWSLETTER_BASE_URL: 'https://example.org', NEWSLETTER_FROM: 'N <n@example.org>' };
const cases = { node: ['-e', '0'], floor: ['/tmp/floor.mjs'], floor3: ['/tmp/floor3.mjs'], cli: ['/work/main/bin/newsletter.js', 'send-due'] };
const res = {}; for (const k in cases) res[k] = [];
for (let i = 0; i < 15; i++) for (const [k, a] of Object.entries(cases)) { const t = performance.now(); const r = spawnSync(process.execPath, a, { env, cwd: '/tmp/newsletter-bench-idle-VyWfcJ' }); if (r.status !== 0) throw new Error(k + r.stderr); res[k].push(performance.now() - t); }
const med = (x) => x.sort((a, b) => a - b)[Math.floor(x.length/2)];
console.log(Object.entries(res).map(([k, v]) => k + ' ' + med(v).toFixed(1)).join(' | '));
