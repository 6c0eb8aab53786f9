/** Types of tcp-proxy.js (plain JavaScript, shared with the chaos driver). */

export interface TcpProxy {
  /** The port to connect to instead of the target's. */
  port: number;
  readonly frozen: boolean;
  /** Connections carried right now. */
  readonly connections: number;
  /** Stops carrying bytes both ways, closing nothing: a partition. */
  freeze(): void;
  /** Carries on with everything that waited, in order. */
  thaw(): void;
  /** Destroys every connection at once. */
  cut(): void;
  close(): Promise<void>;
}

export function startTcpProxy(options: { targetPort: number; targetHost?: string }): Promise<TcpProxy>;
