// One in-process service shared by the tests of a file: started before the
// first test, stopped (and its data directory removed) after the last, so a
// test file says what it needs in one line instead of its own before/after.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import type { ServeConfig } from '../../src/config.ts';
import { startTestService, type TestService } from './service.ts';

/** Registers the hooks; call the returned function inside a test to get the running service. */
export function useTestService(overrides: Partial<ServeConfig> = {}): () => TestService {
  let server: TestService | undefined;
  before(async () => {
    server = await startTestService(overrides);
  });
  after(async () => {
    await server?.stop();
    server?.remove();
  });
  return () => {
    assert.ok(server, 'the shared service started');
    return server;
  };
}
