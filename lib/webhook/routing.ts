/**
 * Which service(s) a push deploys. The service configuration (`kiln.config.yaml`, see
 * docs/configuration.md) maps each service to a repository and its branches to environments;
 * this module only needs that narrow view of it.
 */

/** A service a push deploys, and the environment its branch maps to. */
export interface PushTarget {
  service: string;
  environment: string;
  /** The repository as configured (GitHub names are case-insensitive; kiln uses the configured spelling). */
  repository: string;
}

export interface ServiceRouting {
  /**
   * Services deployed by a push to `repository` (`owner/name`, matched case-insensitively, as
   * GitHub does) on `branch` (exact). A monorepo may map one branch to several services.
   */
  findServicesForPush(repository: string, branch: string): PushTarget[];
  /** Environment of a service's branch (for pages). */
  environmentOf(service: string, branch: string | undefined): string | undefined;
}

/** The part of the service configuration routing reads (structurally a `KilnConfig`). */
export interface RoutingConfig {
  services: Record<string, { repository: string; branches: Record<string, string> }>;
}

/** Routing over the service configuration. */
export function routingFromConfig(config: RoutingConfig): ServiceRouting {
  const entries = Object.entries(config.services).flatMap(([service, s]) =>
    Object.entries(s.branches).map(([branch, environment]) => ({
      service,
      repository: s.repository.toLowerCase(),
      configured: s.repository,
      branch,
      environment,
    })),
  );
  return {
    findServicesForPush(repository, branch) {
      const repo = repository.toLowerCase();
      return entries
        .filter((e) => e.repository === repo && e.branch === branch)
        .map(({ service, environment, configured }) => ({ service, environment, repository: configured }));
    },
    environmentOf(service, branch) {
      const s = Object.hasOwn(config.services, service) ? config.services[service] : undefined;
      if (!s) return undefined;
      // Object.hasOwn: a branch named like an Object.prototype member must not match it.
      if (branch !== undefined && Object.hasOwn(s.branches, branch)) return s.branches[branch];
      const envs = [...new Set(Object.values(s.branches))];
      return envs.length === 1 ? envs[0] : undefined;
    },
  };
}

/** `findServiceForPush` in the single-service form. */
export function findServiceForPush(routing: ServiceRouting, repository: string, branch: string): PushTarget | undefined {
  return routing.findServicesForPush(repository, branch)[0];
}
