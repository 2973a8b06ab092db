/**
 * Interrupting a request's body: the gateway's graceful stop ends the bodies still streaming
 * when its grace time is over, with a retryable answer. The body reader listens; whoever stops
 * the gateway interrupts, without either knowing the other.
 */
import type { IncomingMessage } from 'node:http';

const controllers = new WeakMap<IncomingMessage, AbortController>();

function controllerOf(req: IncomingMessage): AbortController {
  let controller = controllers.get(req);
  if (!controller) controllers.set(req, (controller = new AbortController()));
  return controller;
}

/** Ends the request's body reading (if any) with `reason`, which the request is then answered with. */
export function interruptRequest(req: IncomingMessage, reason: Error): void {
  controllerOf(req).abort(reason);
}

/** Aborted when the request's body reading is to stop (`signal.reason`: the error to answer with). */
export function interruptSignal(req: IncomingMessage): AbortSignal {
  return controllerOf(req).signal;
}
