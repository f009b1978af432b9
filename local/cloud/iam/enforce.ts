/**
 * IAM at run time: every call a kiln Lambda makes to the simulated cloud is authorized against that
 * function's own execution role (serverless.yml), as AWS does, and a denied call fails with the
 * service's access-denied error — so an end-to-end run fails where AWS would, not only the static
 * role check (test/deploy/role-check.test.ts).
 *
 * What is evaluated is the role check's model of the call (`checkRole`: the authorizations the
 * Service Authorization Reference lists for the action, dependent actions included, kiln's tag
 * context), with the real table for DynamoDB calls (the request's `TableName`) and the real function
 * for Lambda invocations. A state machine's Task integrations run as its own role (principal
 * `states:<machine name>`, `Cloud.asPrincipal`). Calls made outside both (the CLI, tests) carry no
 * role here and are not evaluated. Setting `iam.enforce` (default true) turns it off.
 */
import { AwsError } from "../protocol/errors.ts";
import { checkRole, type Env } from "./check.ts";
import { evaluate, type NamedPolicy } from "./evaluate.ts";

/** A Lambda's execution role, as the authorizer sees it. */
export interface ExecutionRole {
  roleName: string;
  policies: NamedPolicy[];
}

/** A call to authorize: the caller's function name, the service's signing name, the action and its input. */
export interface Call {
  /** The function, or the principal of an assumed role (`rolePrincipal`). */
  functionName: string;
  /** For an assumed role: the session name shown in denials (else the function name). */
  session?: string;
  service: string;
  action: string;
  input: unknown;
}

/** IAM service prefixes that differ from the signing name. */
const PREFIX: Record<string, string> = { monitoring: "cloudwatch" };

/** IAM actions named otherwise than the API operation. */
const IAM_ACTION: Record<string, string> = { "lambda:Invoke": "lambda:InvokeFunction" };

/** The function ARN a Lambda Invoke names (a name, a partial or a full ARN, qualified or not). */
function functionArnOf(input: unknown, env: Env): string | undefined {
  const name = input && typeof input === "object" ? (input as { FunctionName?: unknown }).FunctionName : undefined;
  if (typeof name !== "string") return undefined;
  if (name.startsWith("arn:")) return name;
  return `arn:aws:lambda:${env.region}:${env.accountId}:function:${name}`;
}

/** The access-denied error each service answers with. */
function accessDenied(service: string, message: string): AwsError {
  switch (service) {
    case "ec2":
      return new AwsError("UnauthorizedOperation", `You are not authorized to perform this operation. ${message}`, 403);
    case "autoscaling":
    case "elasticloadbalancing":
    case "monitoring":
      return new AwsError("AccessDenied", message, 403);
    case "sns":
      return new AwsError("AuthorizationError", message, 403);
    case "lambda":
      return new AwsError("AccessDeniedException", message, 403);
    default:
      return new AwsError("AccessDeniedException", message, 400);
  }
}

/**
 * The authorizer the cloud calls before every action (`Cloud.setAuthorizer`): throws the service's
 * access-denied error when the calling function's role does not allow the call. Functions without
 * a known role are denied everything (a function deploys with a role or not at all).
 */
/** What enforcement cost: calls authorized, policy evaluations made (the rest hit the cache), wall ms spent. */
export interface AuthorizerStats {
  checks: number;
  evaluations: number;
  ms: number;
}

export function roleAuthorizer(
  roles: ReadonlyMap<string, ExecutionRole>,
  env: Env,
  stats: AuthorizerStats = { checks: 0, evaluations: 0, ms: 0 },
): (call: Call) => void {
  // Decisions are cached per policy set: a role whose policies are replaced is evaluated afresh.
  const byPolicies = new WeakMap<object, Map<string, string | undefined>>();
  const roleless = new Map<string, string | undefined>();
  return (call) => {
    const t = performance.now();
    stats.checks++;
    const policies = roles.get(call.functionName)?.policies;
    let decided = policies ? byPolicies.get(policies) : roleless;
    if (!decided) byPolicies.set(policies!, (decided = new Map()));
    const api = `${PREFIX[call.service] ?? call.service}:${call.action}`;
    const iamAction = IAM_ACTION[api] ?? api;
    const resource = namedResource(call, iamAction, env);
    const key = `${call.functionName}\u0000${call.session ?? ""}\u0000${iamAction}\u0000${resource ?? ""}`;
    if (!decided.has(key)) {
      stats.evaluations++;
      decided.set(key, deny(roles.get(call.functionName), call.session ?? call.functionName, iamAction, resource, env));
    }
    const message = decided.get(key);
    stats.ms += performance.now() - t;
    if (message) throw accessDenied(call.service, message);
  };
}

/** The resource a call names that the evaluation uses as is: the DynamoDB table, the Lambda function. */
function namedResource(call: Call, iamAction: string, env: Env): string | undefined {
  if (iamAction === "lambda:InvokeFunction") return functionArnOf(call.input, env) ?? "*";
  const table =
    call.service === "dynamodb" && call.input && typeof call.input === "object"
      ? (call.input as { TableName?: unknown }).TableName
      : undefined;
  return typeof table === "string" ? `arn:aws:dynamodb:${env.region}:${env.accountId}:table/${table}` : undefined;
}

function deny(role: ExecutionRole | undefined, fn: string, action: string, resource: string | undefined, env: Env) {
  const who = `arn:aws:sts::${env.accountId}:assumed-role/${role?.roleName ?? "(no role)"}/${fn}`;
  if (!role) return `User: ${who} is not authorized to perform: ${action}: the function has no execution role`;
  const refused = (a: string, r: string, via = "") =>
    `User: ${who} is not authorized to perform: ${a} on resource: ${r}${via} because no identity-based policy allows the ${a} action`;
  // Invoking a function: evaluated against that function (a state machine's role names the steps it may invoke).
  if (action === "lambda:InvokeFunction")
    return evaluate(role.policies, { action, resource: resource!, context: {} }).decision === "Allow"
      ? undefined
      : refused(action, resource!);
  const tableArn = resource;
  const { denials } = checkRole(
    role.policies,
    [action],
    { ...env, tables: tableArn ? [tableArn] : env.tables },
    tableArn ? [tableArn] : [],
  );
  const d = denials[0];
  if (!d) return undefined;
  const via = d.request.for ? ` (needed by ${d.request.for})` : "";
  return refused(d.request.action, tableArn && d.request.action.startsWith("dynamodb:") ? tableArn : d.request.resource, via);
}
