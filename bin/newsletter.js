#!/usr/bin/env -S node --
// `--` stops Node 20 from reading our --env-file option as its own (nodejs/node#54232).
import '../dist/cli/main.js';
