import type { Config } from '../config.js';
import { detectHostId, type HostIdentity } from '../host/identity.js';

/** This host's id, with NEWSLETTER_HOST_ID from .env or the environment taking precedence. */
export function currentHost(config: Config): HostIdentity {
  return detectHostId({ env: { NEWSLETTER_HOST_ID: config.hostIdOverride ?? '' } });
}
