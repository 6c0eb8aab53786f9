/** SQL text that both dialects' lists.ts run as it stands (sqlite/lists.ts, postgres/lists.ts). */

/** Every newsletter that names the list `param` holds, with its status: `lists delete` refuses while one is active. */
export function listUsers(param: string): string {
  return `SELECT n.id, n.subject, n.status FROM newsletters n
  JOIN newsletter_lists nl ON nl.newsletter_id = n.id WHERE nl.list_id = ${param} ORDER BY n.id`;
}

/** The event `recipients resubscribe` records: who, why, what it cleared. */
export const RESUBSCRIBE_EVENT = 'resubscribe';
