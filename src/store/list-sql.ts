/** SQL text that both dialects' lists.ts run as it stands (sqlite/lists.ts, postgres/lists.ts). */

/** Every newsletter that names the list `param` holds, with its status: `lists delete` refuses while one is active. */
export function listUsers(param: string): string {
  return `SELECT n.id, n.subject, n.status FROM newsletters n
  JOIN newsletter_lists nl ON nl.newsletter_id = n.id WHERE nl.list_id = ${param} ORDER BY n.id`;
}

/**
 * The active newsletters whose segment excludes the list named `nameParam`, given the dialect's
 * "the JSON array `segment.excludeLists` of n holds it" condition: `lists delete` refuses them too
 * (the migration's trigger would otherwise refuse the DELETE with a bare constraint error).
 */
export function activeExcluders(excludesName: string): string {
  return `SELECT n.id, n.subject, n.status FROM newsletters n
  WHERE n.status IN ('scheduled', 'sending') AND ${excludesName} ORDER BY n.id`;
}

/** The event `recipients resubscribe` records: who, why, what it cleared. */
export const RESUBSCRIBE_EVENT = 'resubscribe';
