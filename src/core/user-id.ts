/**
 * user_ids as identifiers (PROTOCOL.md §5): what a new one may contain, and the form two ids are
 * matched on. The reference is RFC 8265's UsernameCaseMapped profile: width mapping, then case
 * mapping (Unicode toLowerCase), then NFC. The profile's strictness is kept where look-alikes come
 * from (invisible, control and bidi characters, odd spaces, mixed scripts) and relaxed where
 * existing ids need it (an interior ASCII space, symbols such as `@` `+` `.`).
 */
import { ApiError } from './errors.ts';

/** Full-width and half-width forms, and the ideographic space: what RFC 8265's width mapping folds. */
const WIDTH_FORMS = /[\u3000\uFF01-\uFFEE]/g;

/**
 * The matched form of a user_id: width folded (`ａｄａ` is `ada`), NFC, lower case. For an id
 * without width forms this is what earlier releases stored (`NFC` then lower case), so existing
 * accounts keep their key.
 */
export function userKeyOf(userId: string): string {
  return userId.replace(WIDTH_FORMS, (c) => c.normalize('NFKC')).normalize('NFC').toLowerCase();
}

/** The key earlier releases gave an id (no width folding); differs from userKeyOf only for ids with width forms. */
export function legacyUserKeyOf(userId: string): string {
  return userId.normalize('NFC').toLowerCase();
}

const hex = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Classes of characters a user_id may not hold, each with the words that say why. */
const REFUSED: readonly [RegExp, string][] = [
  [/\p{Cc}/u, 'a control character'],
  [/\p{Cs}/u, 'an unpaired surrogate'],
  // Zero-width spaces and joiners, bidi controls, soft hyphens, variation selectors, fillers.
  [/[\p{Cf}\p{Default_Ignorable_Code_Point}]/u, 'an invisible or formatting character'],
  [/[\p{Zl}\p{Zp}]/u, 'a line or paragraph separator'],
  [/[^\P{Zs} ]/u, 'a space other than U+0020'],
  [/\p{Co}/u, 'a private-use character'],
  [/\p{Cn}/u, 'an unassigned code point'],
];

/** Scripts whose letters pass for one another; one id may use only one of them. */
const SCRIPTS: readonly [string, RegExp][] = [
  ['Latin', /\p{Script=Latin}/u],
  ['Greek', /\p{Script=Greek}/u],
  ['Cyrillic', /\p{Script=Cyrillic}/u],
  ['Armenian', /\p{Script=Armenian}/u],
  ['Cherokee', /\p{Script=Cherokee}/u],
  ['Georgian', /\p{Script=Georgian}/u],
  ['Hebrew', /\p{Script=Hebrew}/u],
  ['Arabic', /\p{Script=Arabic}/u],
  ['Han', /\p{Script=Han}/u],
  ['Hiragana', /\p{Script=Hiragana}/u],
  ['Katakana', /\p{Script=Katakana}/u],
  ['Hangul', /\p{Script=Hangul}/u],
  ['Bopomofo', /\p{Script=Bopomofo}/u],
];
/** Mixtures that are normal writing (UTS #39 "highly restrictive"): Japanese, Korean, Chinese with Latin. */
const ALLOWED_MIXES: readonly (readonly string[])[] = [
  ['Latin', 'Han', 'Hiragana', 'Katakana'],
  ['Latin', 'Han', 'Hangul'],
  ['Latin', 'Han', 'Bopomofo'],
];

/** Why a new user_id is refused, for a person to read; null when it is a good identifier. */
export function userIdProblem(userId: string): string | null {
  const scripts = new Set<string>();
  let position = 0;
  for (const c of userId) {
    position++;
    for (const [pattern, what] of REFUSED) {
      if (pattern.test(c)) return `user_id must not contain ${what} (${hex(c)} at character ${position})`;
    }
    for (const [name, pattern] of SCRIPTS) if (pattern.test(c)) scripts.add(name);
  }
  if (userId.startsWith(' ') || userId.endsWith(' ')) return 'user_id must not begin or end with a space';
  if (scripts.size > 1 && !ALLOWED_MIXES.some((mix) => [...scripts].every((s) => mix.includes(s)))) {
    return `user_id must not mix letters of ${[...scripts].join(' and ')} (they can pass for one another)`;
  }
  return null;
}

/** Throws InvalidParams naming what is wrong with a new user_id. */
export function checkNewUserId(userId: string): void {
  const problem = userIdProblem(userId);
  if (problem !== null) throw new ApiError('InvalidParams', problem, { details: [{ path: '/user_id', message: problem }] });
}
