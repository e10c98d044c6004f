#!/usr/bin/env node
// npm's install step for korutin. Uses the prebuilt addon for this Node,
// platform and CPU when the package ships one (prebuilds/, loaded by
// node-gyp-build) and it loads here; otherwise builds from source with
// node-gyp, after checking that the tools for that are on PATH, and names
// the packages that provide any that are missing.
// KORUTIN_BUILD_FROM_SOURCE=1 (or npm's --build-from-source) always builds.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');

/** The addon node-gyp-build would load (a build, or a prebuild), if it loads in this Node. */
function usableAddon() {
  let file;
  try {
    file = require('node-gyp-build').path(root);
  } catch {
    return null;
  }
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { encoding: 'utf8' });
  if (probe.status === 0) return file;
  console.error(`korutin: ${path.relative(root, file)} does not load here:\n${probe.stderr.trim().split('\n').slice(-3).join('\n')}`);
  return null;
}

function onPath(cmd) {
  return (process.env.PATH || '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The build tools node-gyp needs, each as [what, found]. */
function tools() {
  const first = (envVar, names) => (process.env[envVar] ? [process.env[envVar].split(' ')[0]] : names);
  return [
    ['a C compiler (cc, gcc or clang)', first('CC', ['cc', 'gcc', 'clang']).some(onPath)],
    ['a C++ compiler (c++, g++ or clang++)', first('CXX', ['c++', 'g++', 'clang++']).some(onPath)],
    ['make', onPath('make')],
    ['python3', onPath('python3') || onPath('python')],
  ];
}

const PACKAGES = `  Debian/Ubuntu: sudo apt-get install build-essential python3 libboost-context-dev
  Fedora:        sudo dnf install gcc gcc-c++ make python3 boost-devel boost-static
  Alpine:        apk add build-base python3 linux-headers boost-dev
  macOS:         xcode-select --install && brew install boost
(Boost.Context is optional: without it the 'boost' backend is left out.)`;

function explain(what) {
  console.error(`korutin: no prebuilt addon for Node ${process.version} (ABI ${process.versions.modules}) on ` +
    `${process.platform}-${process.arch} ships in this package, so it must be built from source, ${what}.
Install the build tools, then run \`npm rebuild korutin\`:
${PACKAGES}`);
}

function nodeGyp() {
  if (process.env.npm_config_node_gyp) return [process.execPath, process.env.npm_config_node_gyp];
  try {
    return [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
  } catch {
    return onPath('node-gyp') ? ['node-gyp'] : null;
  }
}

function build() {
  const missing = tools().filter(([, found]) => !found).map(([what]) => what);
  if (missing.length) {
    explain(`but ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing`);
    return 1;
  }
  const gyp = nodeGyp();
  if (!gyp) {
    explain('but node-gyp was not found (it comes with npm)');
    return 1;
  }
  const r = spawnSync(gyp[0], [...gyp.slice(1), 'rebuild'], { cwd: root, stdio: 'inherit' });
  if (r.status === 0) return 0;
  explain(`and that build failed (its output is above)`);
  return 1;
}

const fromSource = process.env.KORUTIN_BUILD_FROM_SOURCE === '1' || process.env.npm_config_build_from_source === 'true';
process.exitCode = !fromSource && usableAddon() ? 0 : build();
