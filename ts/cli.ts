#!/usr/bin/env node
/**
 * The `korutin` command. `korutin help` prints the usage below.
 *
 * Output: a human table on stdout; with `--json`, only JSON on stdout (one
 * document with a `schemaVersion`), the table nowhere. Exit codes: 0 every
 * check passed, 1 a check failed (or the command could not run), 2 usage.
 */
import * as fs from 'fs';
import * as path from 'path';
import { BACKENDS, BackendName } from './config';

/** The shape of the JSON documents this command prints; raised on every incompatible change. */
export const SCHEMA_VERSION = 1;

const USAGE = `usage:
  korutin selfcheck [--backend all|${BACKENDS.join('|')}] [--json] [--quick]
      proves each backend here (native suite and JS-bridge suite) and
      compares the result with the support matrix
  korutin bench [--json [FILE]] [--iterations N] [--quick]
      switch costs and JS round trips beside generators and async/await;
      --json alone prints only JSON, --json FILE writes it there
  korutin help              this text
  korutin --version         korutin's version

exit codes: 0 passed, 1 a check failed or the command could not run, 2 usage error`;

/** What each command accepts: flags without a value, and options that take one. */
const COMMANDS: Record<string, { flags: string[]; options: string[] }> = {
  selfcheck: { flags: ['--json', '--quick'], options: ['--backend'] },
  bench: { flags: ['--json', '--quick'], options: ['--iterations'] },
};

class UsageError extends Error {}

/** The package's version: package.json is the one place that holds it. */
function version(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

interface Parsed {
  flags: Set<string>;
  options: Map<string, string>;
}

/** Parses `args` for `command`; `--json` may take an optional FILE for bench. */
function parse(command: string, args: string[]): Parsed {
  const spec = COMMANDS[command];
  const out: Parsed = { flags: new Set(), options: new Map() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (spec.options.includes(a)) {
      const v = args[i + 1];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${a} takes a value`);
      out.options.set(a, v);
      i++;
    } else if (spec.flags.includes(a)) {
      out.flags.add(a);
      const v = args[i + 1];
      if (a === '--json' && command === 'bench' && v !== undefined && !v.startsWith('--')) {
        out.options.set('--json', v);
        i++;
      }
    } else {
      throw new UsageError(`unknown ${a.startsWith('-') ? 'option' : 'argument'} '${a}' for ${command}`);
    }
  }
  return out;
}

function printJson(doc: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ schemaVersion: SCHEMA_VERSION, ...doc }, null, 2) + '\n');
}

async function run(command: string, p: Parsed, json: boolean): Promise<number> {
  if (command === 'selfcheck') {
    const backend = p.options.get('--backend') ?? 'all';
    if (backend !== 'all' && !(BACKENDS as readonly string[]).includes(backend)) throw new UsageError(`unknown backend '${backend}'`);
    // Loaded here, not at start-up, so that help, --version and usage errors work without the addon.
    const { formatSelfcheck, selfcheck } = await import('./selfcheck');
    const report = selfcheck({ backend: backend as BackendName | 'all', quick: p.flags.has('--quick') });
    if (json) printJson({ command, ...report });
    else console.log(formatSelfcheck(report));
    return report.ok ? 0 : 1;
  }
  const iterations = p.options.get('--iterations');
  if (iterations !== undefined && !(Number.isInteger(Number(iterations)) && Number(iterations) > 0)) {
    throw new UsageError('--iterations takes a positive integer');
  }
  const { bench, formatBench } = await import('./bench');
  const report = await bench({ iterations: iterations ? Number(iterations) : undefined, quick: p.flags.has('--quick') });
  const file = p.options.get('--json');
  if (file) {
    fs.writeFileSync(file, JSON.stringify({ schemaVersion: SCHEMA_VERSION, command, ...report }, null, 2) + '\n');
  }
  if (json) printJson({ command, ...report });
  else console.log(formatBench(report));
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  const wantsJson = args.includes('--json');
  try {
    if (command === undefined) throw new UsageError('no command given');
    if (command === 'help' || command === '--help' || command === '-h') {
      console.log(USAGE);
      return 0;
    }
    if (command === '--version' || command === '-v' || command === 'version') {
      if (wantsJson) printJson({ command: 'version', version: version() });
      else console.log(version());
      return 0;
    }
    if (!(command in COMMANDS)) throw new UsageError(`unknown command '${command}'`);
    const p = parse(command, args);
    // `bench --json FILE` writes the JSON there and keeps the table on stdout.
    const json = p.flags.has('--json') && !p.options.has('--json');
    return await run(command, p, json);
  } catch (e) {
    const usage = e instanceof UsageError;
    const err = e as { code?: unknown; message?: unknown };
    const message = e instanceof Error ? e.message : String(e);
    if (wantsJson) {
      printJson({ command: command ?? null, ok: false, error: { code: usage ? 'ERR_USAGE' : (err.code ?? null), message } });
    }
    console.error(usage ? `korutin: ${message}\n${USAGE}` : `korutin: ${message}`);
    return usage ? 2 : 1;
  }
}

main(process.argv.slice(2)).then((code) => (process.exitCode = code));
