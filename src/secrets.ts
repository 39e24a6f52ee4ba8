// The secrets a running service holds and SIGHUP re-reads: the API keys (with
// their quotas), the key that seals listing cursors, and the TLS certificate.
// A reload that fails (a broken keys file, a key that does not match its
// certificate) is logged and changes nothing: the service keeps serving with
// what it had. Nothing here logs a key.
import type { Server } from 'node:https';
import type { Logger } from 'pino';
import { type ServeConfig, tlsFiles } from './config.ts';
import { type Credentials, loadCredentials } from './credentials.ts';
import { ApiKeys } from './http/auth.ts';
import { CursorSealer, cursorMaterialOfKeys } from './http/cursor.ts';

function cursorMaterial(config: Readonly<ServeConfig>, credentials: Credentials): string {
  return config.cursorSecret ?? cursorMaterialOfKeys(credentials.keys.keys());
}

export class Secrets {
  readonly apiKeys: ApiKeys;
  readonly cursors: CursorSealer;
  /** The certificate and key to start with; undefined serves plain HTTP. */
  readonly tls: { cert: Buffer; key: Buffer } | undefined;
  private readonly config: Readonly<ServeConfig>;
  private readonly log: Logger;

  constructor(config: Readonly<ServeConfig>, log: Logger) {
    this.config = config;
    this.log = log;
    this.apiKeys = new ApiKeys(config.credentials);
    this.cursors = new CursorSealer(cursorMaterial(config, config.credentials));
    this.tls = config.tls === undefined ? undefined : tlsFiles(config.tls);
  }

  /**
   * SIGHUP: reads the keys file and the certificate again and swaps them in
   * at once. Requests in flight finish with what they started with; open TLS
   * connections keep their session, new handshakes get the new certificate.
   */
  reload(server: Server | undefined): void {
    let credentials: Credentials;
    let tls: { cert: Buffer; key: Buffer } | undefined;
    try {
      credentials = loadCredentials(this.config.keySources);
      tls = this.config.tls === undefined ? undefined : tlsFiles(this.config.tls);
    } catch (error) {
      this.log.error({ reason: (error as Error).message }, 'reload refused; the keys and certificate in force stay');
      return;
    }
    this.apiKeys.replace(credentials);
    this.cursors.rekey(cursorMaterial(this.config, credentials));
    if (tls !== undefined && server !== undefined) server.setSecureContext(tls);
    this.log.info({ apiKeys: this.apiKeys.size, tls: tls !== undefined }, 'reloaded the API keys and certificate');
  }
}
