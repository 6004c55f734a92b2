#!/usr/bin/env node
// Installs the npm dependencies on a fresh checkout, so `npm start` / `npm test` are the only commands needed.
const { existsSync, statSync } = require('fs');
const { execSync } = require('child_process');
const path = require('path');
const root = path.join(__dirname, '..');
const marker = path.join(root, 'node_modules', '.package-lock.json');
const lock = path.join(root, 'package-lock.json');
if (!existsSync(marker) || statSync(marker).mtimeMs < statSync(lock).mtimeMs) {
  execSync('npm ci --no-audit --no-fund', { cwd: root, stdio: 'inherit' });
}
