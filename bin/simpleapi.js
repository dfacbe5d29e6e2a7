#!/usr/bin/env node
// Loads TypeScript (the framework and method files) with tsx, so nothing needs a build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
