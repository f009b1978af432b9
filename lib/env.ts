/** Typed environment getters: a missing required variable is a configuration error, named. */
export class MissingEnvironmentError extends Error {
  override readonly name = "kiln.ConfigInvalid";
}

export function requireEnv(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === "") throw new MissingEnvironmentError(`environment variable ${name} is not set`);
  return v;
}

export function optionalEnv(name: string, dflt: string): string {
  const v = process.env[name];
  return v === undefined || v === "" ? dflt : v;
}
