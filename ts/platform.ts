/**
 * The platform key: what a support-matrix row is about.
 */
import * as os from 'os';

/** OS, CPU, C library and JS engine of this process. */
export interface Platform {
  os: string;
  arch: string;
  libc: string;
  node: string;
  v8: string;
  /** `linux-x64-glibc-node20`: the matrix row this machine falls under. */
  key: string;
}

function libc(): string {
  if (process.platform !== 'linux') return 'none';
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const glibc = report?.header?.glibcVersionRuntime;
  return glibc ? `glibc-${glibc}` : 'musl';
}

export function platform(): Platform {
  const c = libc();
  const nodeMajor = process.versions.node.split('.')[0];
  return {
    os: process.platform,
    arch: os.arch(),
    libc: c,
    node: process.versions.node,
    v8: process.versions.v8,
    key: `${process.platform}-${os.arch()}-${c.split('-')[0]}-node${nodeMajor}`,
  };
}
