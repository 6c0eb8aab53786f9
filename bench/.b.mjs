const list = process.argv.slice(2);
let last = performance.now(); const out = [];
for (const m of list) { await import(m); const t = performance.now(); out.push(`${m.replace('../dist/','')} ${(t - last).toFixed(2)}`); last = t; }
console.log(out.join(' | '));
