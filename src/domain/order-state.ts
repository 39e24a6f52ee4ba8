// The order state machine and how each transition moves the stock ledger.
import type { OrderState } from './types.ts';

/** The transitions a client asks for; `expire` is the sweeper's alone. */
export const transitionActions = ['pay', 'ship', 'complete', 'cancel'] as const;
export type TransitionAction = (typeof transitionActions)[number];
export const orderActions = [...transitionActions, 'expire'] as const;
export type OrderAction = (typeof orderActions)[number];

/** Legal transitions; anything absent here is an illegal transition (409). */
const transitions: Record<OrderState, Partial<Record<OrderAction, OrderState>>> = {
  created: { pay: 'paid', cancel: 'cancelled', expire: 'expired' },
  paid: { ship: 'shipped', cancel: 'cancelled' },
  shipped: { complete: 'completed' },
  completed: {},
  cancelled: {},
  expired: {},
};

/** The state an action leads to from `from`, or undefined if the action is illegal there. */
export function nextState(from: OrderState, action: OrderAction): OrderState | undefined {
  return transitions[from][action];
}

/** States whose units count as `reserved` in the ledger. */
export function holdsReservation(state: OrderState): boolean {
  return state === 'created';
}

/** States whose units count as `sold` in the ledger. */
export function holdsSale(state: OrderState): boolean {
  return state === 'paid' || state === 'shipped' || state === 'completed';
}

/** States in which the order's units count against the user's per-SKU limit. */
export function holdsUnits(state: OrderState): boolean {
  return holdsReservation(state) || holdsSale(state);
}
