#!/usr/bin/env -S node --
// `--` stops Node 20 from reading our --env-file option as its own (nodejs/node#54232).
//
// CommonJS (bin/package.json), so that cron's every-minute idle `send-due` starts no ES module
// loader at all: it is answered from one bundled file (src/cli/idle.ts, built by
// scripts/build-idle-bundle.js), and only when that says "not idle, or not sure" does the program
// itself load (dist/cli/main.js), which then does and says everything as it always would. The
// quick path only reads; a missing or failing bundle just means the normal path.
'use strict';

if (!(process.argv.includes('send-due') && idleMinute())) import('../dist/cli/main.js');

function idleMinute() {
  try {
    return require('../dist/cli/idle-bundle.cjs').quietIdleSendDue(process.argv.slice(2)) === true;
  } catch {
    return false;
  }
}
