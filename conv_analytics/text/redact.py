"""PII redaction applied at ingest, before any message text (or any field of a quarantined record) is stored.

Arrow's RE2 engine first picks the texts that could hold anything (a digit, '@', '/', 'www.', an IPv6
colon pair); most chat messages hold none and never reach Python. In the rest, cheap regexes find
candidates and maintained validators decide: `phonenumbers` (Google's libphonenumber) for phone
numbers in the configured regions, `python-stdnum` for IBANs and US social security numbers, the
Luhn check for payment cards, `ipaddress` for IP addresses. So order numbers, prices, dates, times
and versions stay readable, while numbers that pass a validator are replaced by a label.

Detectors run in a fixed order over the text, each seeing the spans found before it masked out, so a
digit run is claimed once: URL, e-mail, IP, IBAN, then digit groups by shape (card, SSN with
separators, and the phone shapes redacted before: + or 00, 10 to 12 digits, 9 in groups, 555-1234),
then libphonenumber for phone numbers in every other format of the configured regions (030/12345678,
139- 2477 - 4026), then SSNs written as 9 bare digits.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import iban as stdnum_iban
from stdnum.us import ssn as stdnum_ssn

from conv_analytics.text.arrow import as_large_string_array

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
URL = "[URL]"
IBAN = "[IBAN]"
SSN = "[SSN]"
IP = "[IP]"
LABELS = (EMAIL, PHONE, CARD, URL, IBAN, SSN, IP)

DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "ES", "IT", "BR", "AU")


@dataclass(frozen=True)
class RedactionOptions:
    """What to redact beyond the fixed kinds: the regions whose national phone formats are recognised
    (numbers written with + or an international prefix are found whatever the region) and IPs."""

    phone_regions: tuple[str, ...] | str = DEFAULT_PHONE_REGIONS  # a tuple, or "US,GB,..." as in the setting
    redact_ips: bool = True

    def __post_init__(self) -> None:
        given = self.phone_regions.split(",") if isinstance(self.phone_regions, str) else self.phone_regions
        regions = tuple(dict.fromkeys(r.strip().upper() for r in given if r.strip()))
        unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone region(s) {', '.join(unknown)}: expected ISO 3166 codes such as US, GB")
        object.__setattr__(self, "phone_regions", regions)


DEFAULT_OPTIONS = RedactionOptions()

# Characters that end a URL when they are its last character (sentence punctuation).
_URL_TRAILING = ".,;:!?)]}'\"»…"

_URL_OR_EMAIL = re.compile(
    r"""
    (?P<url>
        (?<![\w.@/-])
        (?:
            (?:https?|ftp)://[^\s<>"'`]{1,2048}
          | www\.[^\s<>"'`]{1,2048}
          | [a-z0-9][a-z0-9-]{0,62}(?:\.[a-z0-9-]{1,63}){0,8}\.[a-z]{2,24}/[^\s<>"'`]{0,2048}
        )
    )
  | (?P<email>
        (?<![\w.+%-])
        [\w+%-][\w.+%-]{0,63}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[^\W\d_]{2,24}
        (?![\w-])
    )
    """,
    re.VERBOSE | re.IGNORECASE,
)
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9a-f]{1,4})?(?:%[\w.]{1,32})?(?![\w:])",
    re.IGNORECASE,
)
# An IBAN: country, check digits, then the account either in one run or in groups of four.
_IBAN = re.compile(
    r"(?<![\w-])[a-z]{2}\d{2}(?:[a-z0-9]{11,30}(?![a-z0-9])|(?:[ -][a-z0-9]{4}){2,7}(?:[ -][a-z0-9]{1,3})?(?![\w-]))",
    re.IGNORECASE,
)
# A group of digits not glued to a word, a reference like "#48213", a currency sign or a path, and
# not the continuation of a decimal, a time or a range; separators inside are single spaces, dots,
# dashes or a bracketed area code.
_NUMBER = re.compile(
    r"""
    (?<![\w#$€£¥@/+])(?<!\d[.,:-])(?<!\w-)
    (?:\+\ ?)?
    (?:\(\d{1,5}\)[\ .-]?)?
    \d{1,19}
    (?:[\ .-]?\(\d{1,5}\)[\ .-]?\d{1,19}|[\ .-]\d{1,19})*
    (?![\w/%€$£¥]|[.,:-]\d|-\w)
    """,
    re.VERBOSE,
)
_SEPARATED_SSN = re.compile(r"\d{3}([ -])\d{2}\1\d{4}")
_BARE_SSN = re.compile(r"\d{9}")
# Local numbers without an area code: 555-1234 and 12 34 56 78. A year range (2023-2024) or an
# unseparated order number (1234567) does not have these shapes.
_LOCAL_PHONE = re.compile(r"\d{3}[ .-]\d{4}|\d{2}(?:[ .-]\d{2}){3}")
# A run that could hold a phone number in any national or international format (libphonenumber only
# looks at runs with at least _MIN_DIGITS digits); separators are those of one line, so a list of
# numbers, one a line, makes one run per number.
_PHONE_RUN = re.compile(r"(?:\+|\b00)?[ (]*\d(?:[ \t().\-/\u2010-\u2015\u2212~]{0,3}\d)+\)?")
_PHONE_CONTEXT = 3
# Longer windows (digit spam) are not cached: the cache would keep them all.
_CACHED_WINDOW = 128
# Dates that libphonenumber accepts as numbers of some region (05.12.2024, 2024-05-12).
_DATE_SHAPE = re.compile(r"\d{1,2}([./-])\d{1,2}\1(?:\d{2}|\d{4})|\d{4}([./-])\d{1,2}\2\d{1,2}")
_DIGIT = re.compile(r"\d")

# Every candidate contains one of these; most chat messages contain none. RE2 syntax, run by Arrow
# over the whole column, so only the few candidate texts reach Python.
_ANCHOR_RE2 = r"[\p{Nd}@/]|(?i:www\.)"
_ANCHOR_IPV6_RE2 = r"[\p{Nd}@/]|(?i:www\.)|::|(?i:[0-9a-f]{1,4}:[0-9a-f]{1,4}:)"
_MASK = "\x00"
# No-break and thin spaces (French typography groups digits with U+202F) read as plain spaces, one
# character for one, so positions in the text stay valid.
_SPACES = str.maketrans(dict.fromkeys([0x00A0, 0x202F, *range(0x2000, 0x200B)], " "))

Span = tuple[int, int, str | None]  # start, end, label (None: keep as it is, but let no later detector claim it)


def luhn_valid(digits: str) -> bool:
    """Payment card check digit; rules out most random 13-19 digit numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def classify_number(candidate: str) -> str | None:
    """The label of a digit group by its shape alone: a card (Luhn), an SSN written with separators,
    or a phone number in the shapes redacted before libphonenumber was used (written with + or 00,
    10 to 12 digits, 9 digits in groups, a local number such as 555-1234); else None, and numbers
    in other formats are left to libphonenumber, which sees their context."""
    digits = "".join(_DIGIT.findall(candidate))
    n = len(digits)
    if candidate.startswith("+"):
        return PHONE if 7 <= n <= 15 else None
    # No card number starts with 0 (0044 ... is a phone number with its international prefix).
    card_shaped = not digits.startswith("0") and "(" not in candidate and "." not in candidate
    if card_shaped and 13 <= n <= 19 and luhn_valid(digits):
        return CARD
    if _SEPARATED_SSN.fullmatch(candidate) and stdnum_ssn.is_valid(digits):
        return SSN
    separated = candidate != digits
    if (digits.startswith("00") and 10 <= n <= 15) or 10 <= n <= 12 or (separated and n == 9):
        return PHONE
    if _LOCAL_PHONE.fullmatch(candidate):
        return PHONE
    return None


def _urls_and_emails(text: str, options: RedactionOptions) -> Iterator[Span]:
    for m in _URL_OR_EMAIL.finditer(text):
        if m.lastgroup == "email":
            yield m.start(), m.end(), EMAIL
            continue
        found = m.group()
        stripped = found.rstrip(_URL_TRAILING)
        # Keep a closing bracket that belongs to the URL, e.g. wiki links "Foo_(bar)".
        while stripped.count("(") > stripped.count(")") and len(stripped) < len(found):
            stripped += found[len(stripped)]
        if stripped and stripped.lower() not in ("http://", "https://", "ftp://", "www."):
            yield m.start(), m.start() + len(stripped), URL


def _ip_addresses(text: str, options: RedactionOptions) -> Iterator[Span]:
    """IP addresses; when they are not to be redacted they are still claimed, so that no phone
    number is read into 192.168.1.10."""
    label = IP if options.redact_ips else None
    if "::" in text or text.count(":") >= 7:  # compressed, or all eight groups
        for m in _IPV6.finditer(text):
            if m.group().strip(":") and _is_ip(m.group()):
                yield m.start(), m.end(), label
    if "." in text:
        for m in _IPV4.finditer(text):
            if _is_ip(m.group()):
                yield m.start(), m.end(), label


def _is_ip(candidate: str) -> bool:
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _ibans(text: str, options: RedactionOptions) -> Iterator[Span]:
    for m in _IBAN.finditer(text):
        found = m.group()
        # A grouped IBAN may have run into a following word of four letters: drop groups until valid.
        while len(found) >= 15:
            if stdnum_iban.is_valid(found):
                yield m.start(), m.start() + len(found), IBAN
                break
            cut = max(found.rfind(" "), found.rfind("-"))
            if cut < 0:
                break
            found = found[:cut]


def _classified_numbers(text: str, options: RedactionOptions) -> Iterator[Span]:
    for m in _NUMBER.finditer(text):
        label = classify_number(m.group())
        if label is not None:
            yield m.start(), m.end(), label


def _phones(text: str, options: RedactionOptions) -> Iterator[Span]:
    for run in _PHONE_RUN.finditer(text):
        if len(_DIGIT.findall(run.group())) < _MIN_DIGITS:
            continue
        # Some context each side: libphonenumber rejects numbers glued to letters or currency signs,
        # and a date followed by ":30" as a time stamp.
        offset = max(run.start() - _PHONE_CONTEXT, 0)
        window = text[offset : run.end() + _PHONE_CONTEXT]
        matches = _phone_matches if len(window) <= _CACHED_WINDOW else _matches_in
        for start, end in matches(window, run.start() - offset, run.end() - offset, options.phone_regions):
            yield offset + start, offset + end, PHONE


def _matches_in(window: str, start: int, end: int, regions: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """libphonenumber's matches in a window whose digit run is window[start:end], trying the regions
    in order until every digit of the run is covered (most numbers match in the first region that
    fits). Regions in which no part of the run can be a valid number are not tried."""
    digits = {i for i in range(start, end) if window[i].isdigit()}
    groups = re.findall(r"\d+", window[start:end])
    found: dict[int, int] = {}
    for region in regions:
        if "+" not in window and not _may_match(region, groups):
            continue
        for match in phonenumbers.PhoneNumberMatcher(window, region, leniency=phonenumbers.Leniency.VALID):
            if _DATE_SHAPE.fullmatch(match.raw_string):
                continue
            found.setdefault(match.start, match.end)
        covered = {i for first, last in found.items() for i in range(first, last)}
        if digits <= covered:
            break
    return tuple(sorted(found.items()))


# Chats repeat numbers (and the same message is often stored twice).
_phone_matches = lru_cache(maxsize=4096)(_matches_in)


def _may_match(region: str, groups: list[str]) -> bool:
    """Whether some run of consecutive digit groups could be a valid number of the region: written
    with its international prefix, or ending in a national significant number that fits one of the
    region's number types (what is written before it, a national prefix or carrier code, only ever
    precedes it). A necessary condition of libphonenumber's validity, checked without the matcher,
    which costs about 50 us a region on a run that is no phone number."""
    international, shapes = _region_shape(region)
    for i in range(len(groups)):
        if international is not None and international.match("".join(groups[i:])):
            return True
    if shapes is None:
        return True
    digits = "".join(groups)
    end = 0
    for group in groups:
        end += len(group)
        for lengths, general, types in shapes:
            for n in lengths:
                if (
                    n <= end
                    and general.fullmatch(digits, end - n, end)
                    and any(t.fullmatch(digits, end - n, end) for t in types)
                ):
                    return True
    return False


# Possible lengths, general pattern and number-type patterns of one region's national numbers.
_Shape = tuple[frozenset[int], re.Pattern[str], tuple[re.Pattern[str], ...]]
_NUMBER_TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


@lru_cache(maxsize=256)
def _region_shape(
    region: str,
) -> tuple[
    re.Pattern[str] | None, tuple[tuple[frozenset[int], re.Pattern[str], tuple[re.Pattern[str], ...]], ...] | None
]:
    """The region's international prefix, and for every region sharing its country code (a number
    dialled as in the US may be Canadian) the possible lengths, general pattern and number-type
    patterns of national significant numbers; None where the national prefix rule inserts digits,
    so that the national significant number need not end what is written."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    international = re.compile(metadata.international_prefix) if metadata.international_prefix else None
    if re.sub(r"\\\d", "", metadata.national_prefix_transform_rule or ""):
        return international, None
    shapes = []
    for member in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(metadata.country_code, (region,)):
        member_metadata = phonenumbers.PhoneMetadata.metadata_for_region(member)
        general = None if member_metadata is None else member_metadata.general_desc
        if general is None or not general.national_number_pattern:
            continue
        types = tuple(
            re.compile(desc.national_number_pattern)
            for desc in (getattr(member_metadata, name) for name in _NUMBER_TYPES)
            if desc is not None and desc.national_number_pattern
        )
        lengths = frozenset(general.possible_length or range(1, 18))
        shapes.append((lengths, re.compile(general.national_number_pattern), types))
    return international, tuple(shapes)


def _bare_ssns(text: str, options: RedactionOptions) -> Iterator[Span]:
    for m in _NUMBER.finditer(text):
        if _BARE_SSN.fullmatch(m.group()) and stdnum_ssn.is_valid(m.group()):
            yield m.start(), m.end(), SSN


Detector = Callable[[str, RedactionOptions], Iterable[Span]]
# Detectors in the order they claim text. The number detectors need at least _MIN_DIGITS digits
# in the text (no IBAN, card, SSN or phone number has fewer), which most texts with a digit lack.
_NUMBER_DETECTORS: tuple[Detector, ...] = (_ibans, _classified_numbers, _phones, _bare_ssns)
_MIN_DIGITS = 7
_WWW = re.compile(r"www\.", re.IGNORECASE)


def _detectors(text: str) -> list[Detector]:
    """The detectors that can find something in the text, judged from cheap features of it."""
    digits = len(_DIGIT.findall(text))
    chosen: list[Detector] = []
    if "@" in text or "/" in text or _WWW.search(text):
        chosen.append(_urls_and_emails)
    if (digits >= 4 and "." in text) or "::" in text or text.count(":") >= 7:
        chosen.append(_ip_addresses)
    if digits >= _MIN_DIGITS:
        chosen += _NUMBER_DETECTORS
    return chosen


def redact_one(text: str, options: RedactionOptions = DEFAULT_OPTIONS) -> tuple[str, int]:
    """Redact one text; returns the new text and how many items were replaced."""
    spans: list[Span] = []
    masked = text if text.isascii() else text.translate(_SPACES)
    for detect in _detectors(masked):
        found: list[Span] = []
        for span in detect(masked, options):
            start, end, _ = span
            if _MASK not in masked[start:end] and all(end <= s or start >= e for s, e, _ in found):
                found.append(span)
        if found:
            spans += found
            masked = _masked(masked, found)
    labelled = sorted((s for s in spans if s[2] is not None), key=lambda s: s[0])
    if not labelled:
        return text, 0
    parts, position = [], 0
    for start, end, label in labelled:
        parts += [text[position:start], label]
        position = end
    parts.append(text[position:])
    return "".join(parts), len(labelled)


def _masked(text: str, spans: list[Span]) -> str:
    """The text with the spans blanked out (same length, so positions stay valid)."""
    parts, position = [], 0
    for start, end, _ in sorted(spans):
        parts += [text[position:start], _MASK * (end - start)]
        position = end
    parts.append(text[position:])
    return "".join(parts)


def redact_texts(
    texts: Iterable[str | None] | pa.Array, options: RedactionOptions = DEFAULT_OPTIONS
) -> tuple[pa.Array, np.ndarray]:
    """Redact e-mails, URLs, phone numbers, IBANs, SSNs, card numbers and (optionally) IP addresses;
    nulls stay null. Returns the redacted texts as a large_string array and the redactions per text (int32).
    """
    column = as_large_string_array(texts)
    counts = np.zeros(len(column), dtype=np.int32)
    anchor = _ANCHOR_IPV6_RE2 if options.redact_ips else _ANCHOR_RE2
    mask = pc.fill_null(pc.match_substring_regex(column, anchor), False)
    rows = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    if len(rows) == 0:
        return column, counts
    redacted = []
    for i, text in zip(rows, column.take(rows).to_pylist(), strict=True):
        new_text, counts[i] = redact_one(text, options)
        redacted.append(new_text)
    replacements = pa.array(redacted, type=pa.large_string())
    return pc.replace_with_mask(column, mask, replacements), counts


def redact_record(record: Mapping[str, Any], options: RedactionOptions = DEFAULT_OPTIONS) -> dict[str, Any]:
    """A copy of a record with every string in it redacted, nested lists and objects included (a
    quarantined record keeps all its fields, so any of them may hold personal data). Integers are
    read as their digits (a phone number or SSN exported as a number) and become the label's text
    when redacted. Keys stay."""
    strings: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            strings.append(str(value))
        elif isinstance(value, Mapping):
            for v in value.values():
                collect(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                collect(v)

    collect(record)
    redacted = iter(redact_texts(strings, options)[0].to_pylist())

    def rebuild(value: Any) -> Any:
        if isinstance(value, str):
            return next(redacted)
        if isinstance(value, int) and not isinstance(value, bool):
            text = next(redacted)
            return value if text == str(value) else text
        if isinstance(value, Mapping):
            return {k: rebuild(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [rebuild(v) for v in value]
        return value

    return rebuild(record)


def pseudonymize(user_ids: Iterable[str | None] | pa.Array | pa.ChunkedArray, key: str | bytes) -> pa.Array:
    """Replace ids by the hex HMAC-SHA256 of the id under a secret key: stable across runs (joins and
    distinct counts still work), distinct ids stay distinct, and without the key no id can be
    recovered or guessed by hashing candidates. Nulls stay null; each distinct id is hashed once."""
    secret = key.encode() if isinstance(key, str) else bytes(key)
    if not secret:
        raise ValueError("the pseudonymisation key is empty")
    column = as_large_string_array(user_ids)
    encoded = pc.dictionary_encode(column)
    digests = [
        None if value is None else hmac.new(secret, value.encode("utf-8"), hashlib.sha256).hexdigest()
        for value in encoded.dictionary.to_pylist()
    ]
    return pa.array(digests, type=pa.large_string()).take(encoded.indices)
