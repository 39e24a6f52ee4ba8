#!/usr/bin/env node
// Launcher: hotstock runs its TypeScript sources directly on Node 24 (type
// stripping), which `npm ci` installs as the `node` dependency and npm puts
// first on PATH for `npm start`, `npm test` and `npx hotstock`. Anything older
// gets a clear message instead of a parse error.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(
    `hotstock needs Node.js 24 or newer; this is ${process.version}.\n` +
      'From a checkout, run it through npm (`npx hotstock ...`, `npm start`), which uses the Node 24 that `npm ci` installs.',
  );
  process.exit(1);
}
await import('../src/main.ts');
