/** How SQLite reads rows with their list names (a JSON array as text), and the readers for them. */
import { rowsOf } from '../rows.js';

export const rows = rowsOf('text');

/** Selects a newsletter `n` with its list names as a JSON array. */
export const NEWSLETTER_SELECT = `
  SELECT n.*, (SELECT json_group_array(l.name) FROM newsletter_lists nl JOIN lists l ON l.id = nl.list_id
               WHERE nl.newsletter_id = n.id) AS lists
  FROM newsletters n`;

/** Selects a subscriber `s` with its list names as a JSON array. */
export const SUBSCRIBER_SELECT = `
  SELECT s.*, (SELECT json_group_array(l.name) FROM memberships m JOIN lists l ON l.id = m.list_id
               WHERE m.subscriber_id = s.id) AS lists,
         (SELECT json_group_array(o.list_name) FROM list_opt_outs o WHERE o.address = s.address) AS left_lists
  FROM subscribers s`;
