#!/usr/bin/env node
'use strict';
// Every socket read allocates a fresh buffer; with incremental marking on, that churn starts a full
// mark-compact every ~20 MB received (25-35% of the time on large segments, see bench/README.md).
// Without it, cheap scavenges reclaim them.
require('node:v8').setFlagsFromString('--no-incremental-marking');
require('../dist/cli.js')
  .main(process.argv.slice(2))
  .then((code) => {
    if (typeof code === 'number') process.exitCode = code;
  });
