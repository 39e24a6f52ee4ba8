// The mirror's initial copy: when a mirror is first attached, the store every
// SKU starts on is copied into it whole, key by key, in commits the mirror's
// limits allow. The copy reads the source as it changes; the worker then
// applies the outbox from the last commit settled before the copy began, so
// whatever changed during the copy is applied again in order and the mirror
// ends exactly where the source is. A copy cut short (a crash) is simply
// done again: it puts what differs and deletes what the source lacks.
import { commitBytes, type Store, type Write } from '../store/contract.ts';
import { differences } from './diff-scan.ts';

export interface CopyReport {
  puts: number;
  deletes: number;
  commits: number;
}

export async function copyStore(source: Store, target: Store): Promise<CopyReport> {
  const report: CopyReport = { puts: 0, deletes: 0, commits: 0 };
  const { commitWritesMax, commitBytesMax } = target.limits;
  let writes: Write[] = [];
  let bytes = 0;
  const flush = async () => {
    if (writes.length === 0) return;
    await target.commit([], writes);
    report.commits++;
    writes = [];
    bytes = 0;
  };
  for await (const difference of differences(source, target)) {
    const write: Write = difference.left
      ? { type: 'put', key: difference.key, value: difference.left.value }
      : { type: 'delete', key: difference.key };
    const size = commitBytes([write]);
    if (writes.length + 1 > commitWritesMax || bytes + size > commitBytesMax) await flush();
    writes.push(write);
    bytes += size;
    if (write.type === 'put') report.puts++;
    else report.deletes++;
  }
  await flush();
  return report;
}
