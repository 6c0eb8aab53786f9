/** How PostgreSQL reads rows with their list names (json, parsed by pg), and the readers for them. */
import { rowsOf } from '../rows.js';

export const rows = rowsOf('parsed');

/** A newsletter `n` with its list names. */
export const NEWSLETTER_SELECT = `
  SELECT n.*, coalesce((SELECT json_agg(l.name) FROM newsletter_lists nl JOIN lists l ON l.id = nl.list_id
                        WHERE nl.newsletter_id = n.id), '[]') AS lists
  FROM newsletters n`;

/** A subscriber `s` with its list names. */
export const SUBSCRIBER_SELECT = `
  SELECT s.*, coalesce((SELECT json_agg(l.name) FROM memberships m JOIN lists l ON l.id = m.list_id
                        WHERE m.subscriber_id = s.id), '[]') AS lists,
         coalesce((SELECT json_agg(o.list_name) FROM list_opt_outs o WHERE o.address = s.address), '[]') AS left_lists
  FROM subscribers s`;
