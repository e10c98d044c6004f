#!/usr/bin/env node
/**
 * `korutin selfcheck [--backend all|NAME] [--json] [--quick]`
 * `korutin bench [--json [FILE]] [--iterations N] [--quick]`
 */
import * as fs from 'fs';
import { BACKENDS, BackendName } from './config';
import { bench, formatBench } from './bench';
import { formatSelfcheck, selfcheck } from './selfcheck';

const USAGE = `usage:
  korutin selfcheck [--backend all|${BACKENDS.join('|')}] [--json] [--quick]
  korutin bench [--json [FILE]] [--iterations N] [--quick]`;

function flag(args: string[], name: string): boolean {
  return args.includes(name);
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  return v === undefined || v.startsWith('--') ? undefined : v;
}

function usageError(msg: string): never {
  console.error(`korutin: ${msg}\n${USAGE}`);
  process.exit(2);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === 'selfcheck') {
    const backend = option(args, '--backend') ?? 'all';
    if (backend !== 'all' && !(BACKENDS as readonly string[]).includes(backend)) usageError(`unknown backend '${backend}'`);
    const report = selfcheck({ backend: backend as BackendName | 'all', quick: flag(args, '--quick') });
    console.log(flag(args, '--json') ? JSON.stringify(report, null, 2) : formatSelfcheck(report));
    return report.ok ? 0 : 1;
  }
  if (command === 'bench') {
    const iterations = option(args, '--iterations');
    if (iterations !== undefined && !(Number(iterations) > 0)) usageError('--iterations takes a positive number');
    const report = await bench({ iterations: iterations ? Number(iterations) : undefined, quick: flag(args, '--quick') });
    console.log(formatBench(report));
    if (flag(args, '--json')) {
      const file = option(args, '--json');
      if (file) fs.writeFileSync(file, JSON.stringify(report, null, 2));
      else console.log(JSON.stringify(report, null, 2));
    }
    return 0;
  }
  if (command === undefined || command === '--help' || command === '-h') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  usageError(`unknown command '${command}'`);
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e) => {
    console.error(e instanceof Error ? `korutin: ${e.message}` : e);
    process.exitCode = 1;
  },
);
