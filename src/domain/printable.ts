/**
 * Text that came from strangers (a bounce report's addresses, diagnostics, Message-IDs) made safe
 * to print on a terminal: every control character (C0, DEL, C1: ESC, BEL, the OSC introducer,
 * CR, …) and every bidirectional override becomes a visible `\xNN` / `\u{…}` escape, so a report
 * cannot retitle the window, hide text or fake output lines. Idempotent: text escaped once (as the
 * reasons of report suppressions are stored) prints the same when escaped again at display, so
 * backslashes are left as they are (a report that writes `\x1b` itself merely looks escaped). Pure.
 */

// C0 (tab included), DEL, C1, and the bidi controls that reorder what follows them.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is escaped
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(UNSAFE, (char) => {
    const code = char.codePointAt(0) ?? 0;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}
