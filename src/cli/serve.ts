// `hotstock serve`: run the service until SIGTERM/SIGINT, then shut down cleanly.
import type { Command } from 'commander';
import { addServeOptions, demoKeys, type RawServeOptions, serveConfig } from '../config.ts';
import { CutoverRecordError } from '../cutover/records.ts';
import { RoutingError } from '../cutover/routing.ts';
import { StandaloneRefused } from '../cutover/standalone.ts';
import { LayoutMismatch } from '../layout.ts';
import { startService } from '../service.ts';
import { StoreFailure } from '../store/contract.ts';
import { TopologyError } from '../store/etcd-topology.ts';
import { type CpuProfiler, startCpuProfile } from './cpu-profile.ts';
import { exitCodes } from './exit-codes.ts';

export function serveCommand(program: Command): void {
  const command = program
    .command('serve')
    .description('run the HTTP service (SIGHUP re-reads --keys-file and the TLS certificate)');
  addServeOptions(command);
  command.action(async (raw: RawServeOptions) => {
    let config: ReturnType<typeof serveConfig>;
    try {
      config = serveConfig(raw);
    } catch (error) {
      return command.error(`error: ${(error as Error).message}`, { exitCode: exitCodes.usage });
    }
    const profiler: CpuProfiler | undefined = raw.cpuProf ? await startCpuProfile(raw.cpuProf) : undefined;
    let service: Awaited<ReturnType<typeof startService>>;
    try {
      service = await startService(config);
    } catch (error) {
      process.stderr.write(`error: cannot start: ${startFailure(error, config)}\n`);
      process.exitCode = exitCodes.failed;
      return;
    }
    if (config.credentials.keys.get(demoKeys.client)?.role === 'client') {
      printDemoBanner(service.url, service.seededSkus);
    }
    // A bad file on reload is logged and the keys and certificate in force stay: the service keeps serving.
    process.on('SIGHUP', () => service.reload());
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        service.app.log.info({ signal }, 'shutting down: draining in-flight work');
        service.close().then(
          async () => {
            if (profiler) process.stderr.write(`cpu profile: ${await profiler.stop()}\n`);
            process.exit(exitCodes.ok);
          },
          (error) => {
            service.app.log.error({ err: error }, 'shutdown failed');
            process.exit(exitCodes.failed);
          },
        );
      });
    }
  });
}

/** A one-line reason for the start-up failures an operator can fix. */
function startFailure(error: unknown, config: { host: string; port: number; dataDir: string }): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return `${config.host}:${config.port} is already in use (choose another --port)`;
  if (code === 'EADDRNOTAVAIL') return `--host ${config.host} is not an address of this machine`;
  if (code === 'EACCES') return `permission denied (--port ${config.port}, --data-dir ${config.dataDir})`;
  // The cluster is not what was configured, or etcd cannot serve: the message is the whole story.
  if (
    error instanceof TopologyError ||
    error instanceof StoreFailure ||
    error instanceof LayoutMismatch ||
    error instanceof RoutingError ||
    error instanceof StandaloneRefused ||
    error instanceof CutoverRecordError
  )
    return error.message;
  return (error as Error).stack ?? String(error);
}

function printDemoBanner(url: string, seeded: number): void {
  const lines = [
    '',
    `hotstock demo is running at ${url}${seeded > 0 ? ` (seeded ${seeded} piggy-shirt SKUs)` : ''}`,
    `  client key: ${demoKeys.client}`,
    `  admin key:  ${demoKeys.admin}`,
    '  try:',
    `    curl -s -H 'Authorization: Bearer ${demoKeys.client}' -H 'Idempotency-Key: first-try' \\`,
    `      -H 'Content-Type: application/json' -d '{"sku":"piggy-red-m","qty":1,"userId":"u1"}' ${url}/v1/orders`,
    `  API docs: ${url}/docs`,
    '  (demo keys are for trying it out; set --admin-keys/--client-keys for real use)',
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
