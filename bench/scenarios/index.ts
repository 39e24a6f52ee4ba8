// Every scenario `npm run bench` runs, in order.
import type { BenchScenario } from '../scenario.ts';
import { batchScenario } from './batch.ts';
import { catalogScenario } from './catalog.ts';
import { etcdScenario } from './etcd.ts';
import { flashSaleScenario } from './flash-sale.ts';
import { migrateScenario } from './migrate.ts';
import { mirrorScenario } from './mirror.ts';
import { overloadScenario } from './overload.ts';
import { scaleScenario } from './scale.ts';
import { throughputScenario } from './throughput.ts';
import { watchScenario } from './watch.ts';

export const scenarios: BenchScenario[] = [
  throughputScenario,
  flashSaleScenario,
  batchScenario,
  catalogScenario,
  overloadScenario,
  scaleScenario,
  etcdScenario,
  watchScenario,
  migrateScenario,
  mirrorScenario,
];
