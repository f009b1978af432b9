import { type Clock, RealClock } from "./clock.ts";

/**
 * Process-wide runtime settings a handler reads at module scope: the clock and the AWS client
 * configuration. In Lambda they are the defaults (wall clock, SDK defaults); the local stack
 * replaces them before it loads any handler, so the same handler code runs on the shared clock and
 * talks to the simulated cloud in process.
 */
export interface AwsClientConfig {
  region?: string;
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  // `any`: a smithy HttpHandler
  requestHandler?: any;
  maxAttempts?: number;
}

interface Runtime {
  clock: Clock;
  aws: AwsClientConfig;
}

const KEY = Symbol.for("kiln.runtime");
const g = globalThis as unknown as { [KEY]?: Runtime };

function runtime(): Runtime {
  g[KEY] ??= { clock: new RealClock(), aws: {} };
  return g[KEY];
}

/** The clock handlers and domain code share. */
export function clock(): Clock {
  return runtime().clock;
}

/**
 * Forwards to the request handler configured *now*: handlers build their clients once at module
 * scope, and a process may run several local stacks one after another (tests), so the transport
 * must follow the runtime rather than be captured by the first client.
 */
const delegatingHandler = {
  metadata: { handlerProtocol: "http/1.1" },
  handle: (request: unknown, options?: unknown) => {
    const h = runtime().aws.requestHandler;
    if (!h) throw new Error("the local runtime has no request handler configured");
    return h.handle(request, options);
  },
  updateHttpClientConfig: () => {},
  httpHandlerConfigs: () => ({}),
  destroy: () => {},
};

/** Config passed to every AWS SDK client the handlers build. */
export function awsConfig(): AwsClientConfig {
  const aws = runtime().aws;
  return aws.requestHandler ? { ...aws, requestHandler: delegatingHandler } : { ...aws };
}

/** Used by the local stack and tests: run handlers on this clock and against this cloud. */
export function configureRuntime(opts: Partial<Runtime>): void {
  const r = runtime();
  if (opts.clock) r.clock = opts.clock;
  if (opts.aws) r.aws = opts.aws;
}
