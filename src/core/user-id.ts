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
const WIDTH_FORM = /[\u3000\uFF01-\uFFEE]/;

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

/**
 * Unicode's scripts, for telling which letters an id mixes: any two can hold look-alikes (Lisu
 * `ꓮ` passes for Latin `A`, Cherokee `Ꭺ` too). Names this Node's regular expressions do not know
 * are left out; a letter of none of them counts as a script of its own.
 */
const SCRIPT_NAMES = (
  'Latin Greek Cyrillic Armenian Hebrew Arabic Syriac Thaana Nko Samaritan Mandaic Devanagari Bengali Gurmukhi Gujarati Oriya Tamil Telugu ' +
  'Kannada Malayalam Sinhala Thai Lao Tibetan Myanmar Georgian Hangul Ethiopic Cherokee Canadian_Aboriginal Ogham Runic Tagalog Hanunoo ' +
  'Buhid Tagbanwa Khmer Mongolian Limbu Tai_Le New_Tai_Lue Buginese Tai_Tham Balinese Sundanese Batak Lepcha Ol_Chiki Glagolitic Tifinagh ' +
  'Coptic Hiragana Katakana Bopomofo Han Yi Lisu Vai Bamum Syloti_Nagri Phags_Pa Saurashtra Kayah_Li Rejang Javanese Cham Tai_Viet ' +
  'Meetei_Mayek Osage Osmanya Adlam Deseret Shavian Gothic Old_Italic Vithkuqi Wancho Toto Nyiakeng_Puachue_Hmong Warang_Citi Medefaidrin ' +
  'Miao Pahawh_Hmong Mro Bassa_Vah Mende_Kikakui Chakma Sharada Takri Tirhuta Modi Newa Ahom Dogra Masaram_Gondi Gunjala_Gondi ' +
  'Hanifi_Rohingya Sora_Sompeng Khojki Khudawadi Mahajani Multani Grantha Siddham Bhaiksuki Marchen Zanabazar_Square Soyombo Nandinagari ' +
  'Dives_Akuru Yezidi Chorasmian Elymaic Sogdian Old_Sogdian Old_Uyghur Tangsa Kawi Nag_Mundari Nushu Tangut Khitan_Small_Script Cypro_Minoan'
)
  .split(' ')
  .flatMap((name): [string, RegExp][] => {
    try {
      return [[name, new RegExp(`\\p{Script=${name}}`, 'u')]];
    } catch {
      return [];
    }
  });
const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;

/** The script a letter or digit belongs to; `other` for one of a script not listed above. */
function scriptOf(c: string): string | null {
  if (!LETTER_OR_DIGIT.test(c) || /\p{Script=Common}|\p{Script=Inherited}/u.test(c)) return null;
  for (const [name, pattern] of SCRIPT_NAMES) if (pattern.test(c)) return name;
  return `other (${hex(c)})`;
}

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
    // RFC 8265's IdentifierClass disallows compatibility forms (styled `𝚊`, circled `ⓐ`, `ﬁ`):
    // they fold to other letters. Width forms are the exception: the matched form folds them.
    if (!WIDTH_FORM.test(c) && c.normalize('NFKC') !== c.normalize('NFC')) {
      return `user_id must not contain a compatibility form of another character (${hex(c)} at character ${position}, which stands for ${JSON.stringify(c.normalize('NFKC'))}): write the plain character`;
    }
    const script = scriptOf(c);
    if (script !== null) scripts.add(script);
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
