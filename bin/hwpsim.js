#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (built by `npm ci` / `npm run build`).
// `--version` is answered here, without loading the CLI.
import { readFileSync } from 'node:fs';

if (process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-v')) {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${pkg.version}\n`);
} else {
  const { main } = await import('../dist/runner/cli.js');
  await main();
}
