// The exit codes of every hotstock command, one table (README, "Exit codes").
export const exitCodes = {
  /** Done: serve stopped cleanly, check found the ledger exact, migrate (and --verify) succeeded. */
  ok: 0,
  /**
   * The work failed: check found a violation, serve could not start or stop,
   * migrate failed or --verify found a difference.
   */
  failed: 1,
  /**
   * Refused before any work: a bad flag or environment twin, a file that
   * cannot be read (keys, certificates), a data directory that holds no store
   * (check) or another migration (migrate).
   */
  usage: 2,
  /** migrate: etcd compacted a revision the migration needs. */
  compacted: 3,
} as const;

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];
