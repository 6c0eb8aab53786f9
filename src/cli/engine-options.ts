/**
 * The part of the configuration a run of the engine gets (src/engine/options.ts). Picked field by
 * field, so that what the engine has no use for (the DKIM key, the transport's credentials, the
 * database) never reaches it.
 */
import type { Config } from '../config.js';
import type { MessageOptions, SendDueOptions } from '../engine/options.js';

export function messageOptionsOf(config: Config): MessageOptions {
  return {
    from: config.from,
    baseUrl: config.baseUrl,
    secret: config.secret,
    replyTo: config.replyTo,
    returnPath: config.returnPath,
  };
}

export function sendDueOptionsOf(config: Config): SendDueOptions {
  return {
    ...messageOptionsOf(config),
    rate: config.rate,
    batchSize: config.batchSize,
    connections: config.connections,
    leaseMs: config.leaseMs,
    retryAfter: config.retryAfter,
    quota: config.quota && { account: config.quota.account, hourlyLimit: config.quota.hourlyLimit },
  };
}
