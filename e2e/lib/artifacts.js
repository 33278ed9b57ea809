'use strict';
// Test artifacts (screenshots, wire logs, chatgate logs) go to
// e2e/artifacts/ (gitignored), or to $E2E_ARTIFACTS.

const fs = require('node:fs');
const path = require('node:path');

const DIR = process.env.E2E_ARTIFACTS || path.resolve(__dirname, '..', 'artifacts');

function artifactPath(name) {
  fs.mkdirSync(DIR, { recursive: true });
  return path.join(DIR, name);
}

// A wire log: timestamped lines, written to a file when saved.
class WireLog {
  constructor(name) {
    this.name = name;
    this.start = Date.now();
    this.lines = [];
  }

  add(kind, text) {
    const ms = String(Date.now() - this.start).padStart(6);
    this.lines.push(`${ms}ms ${kind} ${text}`);
  }

  phase(name) {
    this.lines.push(`\n==== ${name} ====`);
  }

  text() {
    return this.lines.join('\n') + '\n';
  }

  save() {
    const p = artifactPath(`${this.name}-wire.txt`);
    fs.writeFileSync(p, this.text());
    return p;
  }
}

module.exports = { artifactPath, WireLog, ARTIFACTS_DIR: DIR };
