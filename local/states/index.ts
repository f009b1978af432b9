/**
 * The local Step Functions engine and its API. `registerStepFunctions(cloud, deps)` puts the
 * service on the simulated cloud; `statesBackend(cloud).awaitExecution(arn)` waits for a run in
 * process; `Engine` runs definitions without a cloud (unit tests).
 */
export { registerStepFunctions, StepFunctionsBackend, statesBackend } from "./api.ts";
export { Engine, type EngineOptions } from "./engine/engine.ts";
export { Execution, HISTORY_LIMIT, REDRIVE_WINDOW_MS } from "./engine/execution.ts";
export { StatesError, StatesErrorNames } from "./engine/errors.ts";
export type { EngineDeps, ExecutionView, HistoryEvent, LambdaResult, StatesGraph } from "./engine/types.ts";
