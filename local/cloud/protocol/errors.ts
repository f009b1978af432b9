/**
 * An AWS error as the wire carries it. Services throw these; the protocol layer renders them in the
 * envelope of the caller's protocol (EC2 `<Response><Errors>`, awsQuery `<ErrorResponse>`, JSON `__type`).
 */
export class AwsError extends Error {
  override readonly name = "AwsError";
  constructor(
    /** Wire code, e.g. `InvalidInstanceID.NotFound`, `ValidationError`, `ThrottlingException`. */
    readonly code: string,
    message: string,
    /** HTTP status. */
    readonly status = 400,
    /** awsQuery `<Type>`: Sender for client faults, Receiver for server faults. */
    readonly fault: "Sender" | "Receiver" = status >= 500 ? "Receiver" : "Sender",
    /** JSON protocol `__type` prefix (e.g. `com.amazonaws.swf.service.v2.model#`). */
    readonly typePrefix = "",
  ) {
    super(message);
  }
}

export const missingParameter = (protocol: "ec2" | "query" | "json", name: string): AwsError => {
  if (protocol === "ec2") return new AwsError("MissingParameter", `The request must contain the parameter ${name}`);
  if (protocol === "query") return new AwsError("ValidationError", `${name} is required`);
  return new AwsError(
    "ValidationException",
    `1 validation error detected: Value null at '${lowerFirst(name)}' failed to satisfy constraint: Member must not be null`,
  );
};

export const invalidValue = (protocol: "ec2" | "query" | "json", name: string, value: unknown, why: string): AwsError => {
  if (protocol === "ec2")
    return new AwsError("InvalidParameterValue", `Value (${String(value)}) for parameter ${name} is invalid. ${why}`);
  if (protocol === "query") return new AwsError("ValidationError", `Invalid value '${String(value)}' for ${name}: ${why}`);
  return new AwsError("ValidationException", `Invalid value '${String(value)}' for ${name}: ${why}`);
};

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}
