// The internal route instances forward writes on (distributed mode, see
// src/cluster/): the mutations of SKUs this instance owns, sent by the
// instance a client happened to reach. It takes the cluster key and nothing
// else (an API key is refused), validates its body as strictly as the public
// routes validate theirs (the same named schemas), and is bounded in body
// size, in operations per request and in requests served at once. It is not
// part of the public API document.
import type { FastifyInstance } from 'fastify';
import type { ForwardedOp, ForwardedRequest } from '../cluster/wire.ts';
import { forwardedOperationsPath } from '../cluster/wire.ts';
import { clusterForwardBodyBytesMax, clusterForwardOpsMax, clusterInboundRequestsMax } from '../constants.ts';
import { transitionActions } from '../domain/order-state.ts';
import type { OperationResult } from '../engine/operations.ts';
import { type ClusterKeys, scopePattern } from './auth.ts';
import { sendProblem } from './problem.ts';
import { idSchema, ref } from './schemas.ts';

export interface InternalDeps {
  keys: ClusterKeys;
  serve(ops: readonly ForwardedOp[]): Promise<OperationResult[]>;
}

const intentSchema = {
  type: 'object',
  required: ['scope', 'key'],
  additionalProperties: false,
  properties: {
    scope: { type: 'string', pattern: scopePattern },
    key: idSchema,
    // A SHA-256 in base64url.
    fingerprint: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' },
  },
} as const;

/** If-Match as the engine takes it; the header is at most 256 characters, so a list holds at most 64 tags. */
const ifMatchSchema = {
  oneOf: [
    { const: '*' },
    { type: 'array', maxItems: 64, items: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
  ],
} as const;

function opSchema(kind: ForwardedOp['kind'], required: string[], properties: Record<string, unknown>) {
  return {
    type: 'object',
    required: ['kind', ...required],
    additionalProperties: false,
    properties: { kind: { const: kind }, ...properties, intent: intentSchema },
  };
}

const guarded = { sku: idSchema, ifMatch: ifMatchSchema };

export const forwardedRequestSchema = {
  type: 'object',
  required: ['ops'],
  additionalProperties: false,
  properties: {
    ops: {
      type: 'array',
      minItems: 1,
      maxItems: clusterForwardOpsMax,
      items: {
        oneOf: [
          opSchema('reserve', ['reservation'], { reservation: ref('Reservation') }),
          opSchema('transition', ['sku', 'orderId', 'action'], {
            ...guarded,
            orderId: idSchema,
            action: { enum: [...transitionActions] },
          }),
          opSchema('adjust', ['sku', 'adjustment'], { ...guarded, adjustment: ref('Adjustment') }),
          opSchema('upsert', ['sku', 'upsert'], { ...guarded, upsert: ref('SkuUpsert') }),
        ],
      },
    },
  },
} as const;

export function internalRoutes(app: FastifyInstance, deps: InternalDeps): void {
  let serving = 0;
  app.post<{ Body: ForwardedRequest }>(
    forwardedOperationsPath,
    {
      bodyLimit: clusterForwardBodyBytesMax,
      config: { role: 'cluster' },
      schema: { hide: true, body: forwardedRequestSchema },
    },
    async (request, reply) => {
      if (serving >= clusterInboundRequestsMax) {
        return sendProblem(reply, { code: 'overloaded', detail: 'too many forwarded requests at once; retry shortly' });
      }
      serving++;
      try {
        return { results: await deps.serve(request.body.ops) };
      } finally {
        serving--;
      }
    },
  );
}
