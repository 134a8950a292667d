#!/usr/bin/env node
// The `slipway` command: runs the TypeScript sources through tsx, as the services do.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
process.exitCode = await main(process.argv.slice(2));
