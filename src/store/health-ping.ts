/**
 * A store's answer to "does the database answer?" (GET /health, /health/ready), bounded in time
 * and in what it leaves behind. Node's database drivers do not give up on a request the server
 * took and never answered (MongoDB driver 7 ignores timeoutMS; mysql2's timeout starts only once
 * a pool connection is free), so the wait is ours:
 * - checks made together share the ping in flight, and are told "down" after `ms`;
 * - a ping still unanswered then is abandoned: the next check sends a new one, so one ping lost
 *   on one connection does not keep saying "down" while the database answers;
 * - at most `maxAbandoned` abandoned pings may be outstanding: past that, checks say "down"
 *   without sending more, so a database that answers nothing holds a bounded number of them,
 *   however often a load balancer asks.
 */
import { answerWithin } from '../core/clock.ts';

export class HealthPing {
  #inFlight: Promise<boolean> | null = null;
  /**
   * Every ping not yet settled, with how to tell it that it was abandoned: the one in flight, if
   * any, and the abandoned ones.
   */
  readonly #abandons = new Map<Promise<boolean>, AbortController>();

  /**
   * `send` is told through its signal when its ping is abandoned, so that it can end what it
   * holds (MySQL: the connection it pings on).
   *
   * @example new HealthPing(() => db.command({ ping: 1 }))
   */
  constructor(
    private readonly send: (abandoned: AbortSignal) => Promise<unknown>,
    private readonly ms = 2000,
    private readonly maxAbandoned = 4,
  ) {}

  /** Gives up on every ping still waiting (the store is closing): each ends what it holds. */
  abandonAll(): void {
    for (const abandon of this.#abandons.values()) abandon.abort();
  }

  async check(): Promise<boolean> {
    if (this.#inFlight === null) {
      // None in flight: every ping still unsettled is an abandoned one.
      if (this.#abandons.size >= this.maxAbandoned) return false;
      const abandon = new AbortController();
      const sent = (async () => this.send(abandon.signal))().then(
        () => true,
        () => false,
      );
      this.#abandons.set(sent, abandon);
      this.#inFlight = sent;
      void sent.then(() => {
        this.#abandons.delete(sent);
        if (this.#inFlight === sent) this.#inFlight = null;
      });
    }
    const ping = this.#inFlight;
    try {
      return await answerWithin(ping, this.ms);
    } catch {
      if (this.#inFlight === ping) {
        this.#inFlight = null;
        this.#abandons.get(ping)?.abort();
      }
      return false;
    }
  }
}
