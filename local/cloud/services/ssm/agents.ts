/**
 * SSM agents: an instance becomes a managed node `ssm.agentOnlineMs` after it is `running` (the
 * agent starts, then registers), and stops being one when the instance stops or terminates (stopped
 * and terminated nodes are not returned by DescribeInstanceInformation). A standing `ssm-agent`
 * fault matching the instance makes its agent report `ConnectionLost` (it stops pinging) until the
 * fault is removed.
 */
import type { TimerHandle } from "../../../../lib/clock.ts";
import type { Cloud } from "../../cloud.ts";
import type { Ec2Api, InstanceStateEvent, SimInstance } from "../../contracts.ts";
import { instanceAttrs } from "./common.ts";

export type PingStatus = "Online" | "ConnectionLost";

export interface Agent {
  readonly instanceId: string;
  readonly registeredAt: number;
  /** Last time the agent was seen pinging (frozen while it is offline). */
  lastPing: number;
}

/** What DescribeInstanceInformation and the world snapshot show of an agent. */
export interface AgentView {
  instanceId: string;
  pingStatus: PingStatus;
  lastPing: number;
  registeredAt: number;
  instance?: SimInstance;
}

/** Agent version reported by every simulated node (a real 2025 agent release). */
export const AGENT_VERSION = "3.3.1957.0";

export class Agents {
  private readonly agents = new Map<string, Agent>();
  private readonly pendingRegistration = new Map<string, TimerHandle>();
  private readonly listener = (e: InstanceStateEvent) => this.onInstanceState(e);

  constructor(
    private readonly cloud: Cloud,
    /** Called when a registered agent goes away with its instance (stop/terminate). */
    private readonly onGone: (instanceId: string) => void,
  ) {
    cloud.bus.on("instance-state", this.listener);
  }

  private get ec2(): Ec2Api | undefined {
    return this.cloud.maybeBackend<Ec2Api>("ec2");
  }

  instance(id: string): SimInstance | undefined {
    return this.ec2?.instance(id);
  }

  /**
   * Adopts instances that were already running before SSM started: those running for longer than
   * the registration delay are registered at once, the others when their delay has elapsed.
   */
  start(): void {
    for (const inst of this.ec2?.instances() ?? []) {
      if (inst.state !== "running" || this.agents.has(inst.id) || this.pendingRegistration.has(inst.id)) continue;
      const since = this.cloud.clock.now() - inst.launchTime.getTime();
      this.schedule(inst.id, Math.max(0, this.registrationDelay() - since));
    }
  }

  stop(): void {
    this.cloud.bus.off("instance-state", this.listener);
    for (const t of this.pendingRegistration.values()) this.cloud.clock.clearTimeout(t);
    this.pendingRegistration.clear();
  }

  /** Online / ConnectionLost for a registered agent, undefined when the node is not managed. */
  pingStatus(instanceId: string): PingStatus | undefined {
    const agent = this.agents.get(instanceId);
    if (!agent) return undefined;
    const offline = this.cloud.faults.active("ssm-agent", instanceAttrs(this.instance(instanceId), instanceId));
    if (offline) return "ConnectionLost";
    // The agent pings on an interval; report the last ping that would have happened by now.
    const every = this.cloud.setting("ssm.pingIntervalMs", 300_000);
    const now = this.cloud.clock.now();
    agent.lastPing = Math.max(agent.lastPing, now - ((now - agent.registeredAt) % Math.max(1, every)));
    return "Online";
  }

  isRegistered(instanceId: string): boolean {
    return this.agents.has(instanceId);
  }

  isOnline(instanceId: string): boolean {
    return this.pingStatus(instanceId) === "Online";
  }

  list(): AgentView[] {
    const out: AgentView[] = [];
    for (const a of this.agents.values()) {
      const pingStatus = this.pingStatus(a.instanceId);
      if (!pingStatus) continue;
      out.push({
        instanceId: a.instanceId,
        pingStatus,
        lastPing: a.lastPing,
        registeredAt: a.registeredAt,
        instance: this.instance(a.instanceId),
      });
    }
    return out;
  }

  private registrationDelay(): number {
    return this.cloud.jitter(this.cloud.setting("ssm.agentOnlineMs", 60_000), this.cloud.setting("ssm.agentOnlineJitter", 0.5));
  }

  private schedule(instanceId: string, delayMs: number): void {
    const t = this.cloud.clock.setTimeout(() => {
      this.pendingRegistration.delete(instanceId);
      if (this.instance(instanceId)?.state !== "running") return;
      const now = this.cloud.clock.now();
      this.agents.set(instanceId, { instanceId, registeredAt: now, lastPing: now });
    }, delayMs);
    this.pendingRegistration.set(instanceId, t);
  }

  private onInstanceState({ instance, to }: InstanceStateEvent): void {
    if (to === "running") {
      if (!this.agents.has(instance.id) && !this.pendingRegistration.has(instance.id))
        this.schedule(instance.id, this.registrationDelay());
      return;
    }
    if (to === "pending") return;
    // stopping, stopped, shutting-down, terminated: the agent is gone with the OS.
    const t = this.pendingRegistration.get(instance.id);
    if (t) {
      this.cloud.clock.clearTimeout(t);
      this.pendingRegistration.delete(instance.id);
    }
    this.agents.delete(instance.id);
    this.onGone(instance.id);
  }
}
