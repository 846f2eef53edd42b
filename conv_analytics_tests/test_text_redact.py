"""PII redaction: what must be replaced, what must stay, and awkward input."""

from __future__ import annotations

import hashlib
import hmac
import random

import numpy as np
import phonenumbers
import pyarrow as pa
import pytest
from phonenumbers import PhoneNumberFormat
from stdnum import iban as stdnum_iban

from conv_analytics.text import redact as redact_module
from conv_analytics.text.redact import (
    DEFAULT_PHONE_REGIONS,
    RedactionOptions,
    classify_number,
    luhn_valid,
    pseudonymize,
    redact_one,
    redact_record,
    redact_texts,
)


def redact(text: str) -> str:
    out, _ = redact_texts([text])
    return out[0].as_py()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to john.doe@example.com please", "write to [EMAIL] please"),
        ("Mail: Anna_B+news@mail.co.uk.", "Mail: [EMAIL]."),
        ("contact ÉLODIE@société.fr", "contact [EMAIL]"),
        ("call me on +1 (415) 555-2671", "call me on [PHONE]"),
        ("my number is 415-555-2671.", "my number is [PHONE]."),
        ("tel (415) 555 2671 after 5pm", "tel [PHONE] after 5pm"),
        ("UK: +44 20 7946 0958 or 020 7946 0958", "UK: [PHONE] or [PHONE]"),
        ("Ruf mich an: 0049 30 12345678", "Ruf mich an: [PHONE]"),
        ("mon portable 06 12 34 56 78", "mon portable [PHONE]"),
        ("llámame al 612 345 678", "llámame al [PHONE]"),
        ("phone 4155552671", "phone [PHONE]"),
        ("or locally 555-1234, after six", "or locally [PHONE], after six"),
        ("ring 555 1234", "ring [PHONE]"),
        ("ring me on 12 34 56 78", "ring me on [PHONE]"),
        ("card 4111 1111 1111 1111 expired", "card [CARD] expired"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("amex 3782 822463 10005!", "amex [CARD]!"),
        ("number:5555555555554444", "number:[CARD]"),
        ("see https://example.com/reset?token=abc.", "see [URL]."),
        ("(docs at http://wiki.example.org/Foo_(bar))", "(docs at [URL])"),
        ("go to www.example.com, then log in", "go to [URL], then log in"),
        ("link: bit.ly/3xYz", "link: [URL]"),
    ],
)
def test_replaces_pii(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "my order #48213 has not arrived",
        "order 48213 and order no. 1234567",
        "the 2023-2024 season, scores 3-4 and 12-14",
        "meet at 10:30 or 14:45:00",
        "it cost $1,299.99 (or €1.299,99) yesterday",
        "total 12,345,678.90 USD",
        "delivered on 2024-05-12 10:30, invoice dated 12/05/2024",
        "see you 05.12.2024 at 9",
        "2024-05-12T10:30:00Z",
        "zip 94105, apt 12B, room 1203",
        "version 1.2.3 and 3.11.7",
        "1 2 3 4 5 6",
        "between 10 and 20%",
        "reference ABC-123456789-XY",
        "tracking 1Z999AA10123456784",
        "1234 5678 9012 3456",  # 16 digits, Luhn-invalid: not a card
        "a 25-digit run 1234567890123456789012345",
        "I'm 25 years old and 180 cm tall",
        "and/or either",
        "e.g. the U.S. team",
        "user@localhost",
    ],
)
def test_keeps_ordinary_numbers_and_text(text: str) -> None:
    assert redact(text) == text


def test_counts_per_text_and_nulls_stay_null() -> None:
    texts = ["a@b.io and c@d.io", None, "", "nothing here", "call 415-555-2671"]
    out, counts = redact_texts(texts)
    assert out.type == pa.large_string()
    assert out.to_pylist() == ["[EMAIL] and [EMAIL]", None, "", "nothing here", "call [PHONE]"]
    assert counts.dtype == np.int32
    assert counts.tolist() == [2, 0, 0, 0, 1]


@pytest.mark.parametrize("arrow_type", [pa.string(), pa.large_string()])
def test_accepts_arrow_arrays(arrow_type: pa.DataType) -> None:
    column = pa.chunked_array([["x@y.com", None], ["fine"]], type=arrow_type)
    out, counts = redact_texts(column)
    assert out.to_pylist() == ["[EMAIL]", None, "fine"]
    assert counts.tolist() == [1, 0, 0]
    empty, none = redact_texts(pa.array([], type=arrow_type))
    assert len(empty) == 0 and len(none) == 0


def test_robust_input() -> None:
    big = ("word " * 200_000) + "mail a@b.co " + "1" * 300 + " " + "x." * 10_000
    texts = ["\ud800 lone surrogate a@b.io", "😀🎉", big, "http://" * 50_000, "@" * 100_000]
    out, counts = redact_texts(texts)
    values = out.to_pylist()
    assert values[0] == "\ufffd lone surrogate [EMAIL]"
    assert values[1] == "😀🎉"
    assert values[2].count("[EMAIL]") == 1 and counts[2] == 1
    assert len(values) == 5


def test_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="text #1 is int"):
        redact_texts(["ok", 5])
    with pytest.raises(TypeError, match="single string"):
        redact_texts("not a list")
    with pytest.raises(TypeError, match="Arrow type int64"):
        redact_texts(pa.array([1, 2]))


def test_luhn_and_classification() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert classify_number("4111 1111 1111 1111") == "[CARD]"
    assert classify_number("536-90-4399") == "[SSN]"
    assert classify_number("555-1234") == "[PHONE]"
    assert classify_number("0044 121 234 5678") == "[PHONE]"  # its international prefix, not a card
    assert classify_number("+49 30 1234567") == "[PHONE]"
    assert classify_number("560 436 4040") == "[PHONE]"  # 10 digits: a phone number, as before
    assert classify_number("2024-05-12") is None


# --- validators: phone numbers (libphonenumber), IBAN and SSN (python-stdnum), IP addresses ----------------

# Six or more ways of writing real-looking numbers of each default region (fixed lines and mobiles in
# the region's numbering plan, national and international formats, other separators).
PHONES = {
    "US": ["(201) 555-0123", "201-555-0123", "201.555.0123", "+1 201 555 0123", "+12015550123", "1-201-555-0123"],
    "GB": [
        "0121 234 5678",
        "07400 123456",
        "+44 7400 123456",
        "+44 (0)121 234 5678",
        "0044 121 234 5678",
        "020-7946-0958",
    ],
    "DE": [
        "030 12345678",
        "030/12345678",
        "01512 3456789",
        "+49 30 12345678",
        "+49 (0)151 23456789",
        "0049 89 1234567",
    ],
    "FR": [
        "01 23 45 67 89",
        "06 12 34 56 78",
        "06.12.34.56.78",
        "0612345678",
        "+33 6 12 34 56 78",
        "0033 1 23 45 67 89",
    ],
    "IN": ["074104 10123", "081234 56789", "+91 81234 56789", "+91-7410410123", "0091 98765 43210", "9876543210"],
    "ES": ["810 12 34 56", "612 34 56 78", "612 345 678", "+34 612 345 678", "0034 912 345 678", "912-345-678"],
    "IT": ["02 1234 5678", "312 345 6789", "+39 312 345 6789", "+39 02 1234 5678", "0039 06 1234 5678", "3123456789"],
    "BR": [
        "(11) 2345-6789",
        "(11) 96123-4567",
        "+55 11 96123-4567",
        "+55 (11) 2345-6789",
        "11 96123 4567",
        "(21) 98765-4321",
    ],
    "AU": [
        "(02) 1234 5678",
        "0412 345 678",
        "+61 412 345 678",
        "+61 2 1234 5678",
        "0412-345-678",
        "0011 61 412 345 678",
    ],
}


@pytest.mark.parametrize(("region", "number"), [(r, n) for r, numbers in PHONES.items() for n in numbers])
def test_phone_numbers_of_every_default_region(region: str, number: str) -> None:
    assert phonenumbers.is_valid_number(phonenumbers.parse(number, region)), "the test number itself is valid"
    assert redact(f"call me on {number} please") == "call me on [PHONE] please"
    assert redact(f"Tel.: {number}.") == "Tel.: [PHONE]."
    assert redact(number) == "[PHONE]"


def test_phone_regions_are_a_parameter() -> None:
    french_only = RedactionOptions(phone_regions=("fr",))
    assert french_only.phone_regions == ("FR",)
    assert RedactionOptions(phone_regions=" us, GB,,us ").phone_regions == ("US", "GB")  # as in the setting
    assert redact_one("appelle le 06 12 34 56 78", french_only) == ("appelle le [PHONE]", 1)
    # a Berlin number written the German way is no French number; written internationally it is found
    assert redact_one("ruf 030/12345678 an", french_only) == ("ruf 030/12345678 an", 0)
    assert redact_one("ruf +49 30/12345678 an", french_only) == ("ruf [PHONE] an", 1)
    assert redact_one("ruf 030/12345678 an", RedactionOptions(phone_regions=("DE",))) == ("ruf [PHONE] an", 1)
    with pytest.raises(ValueError, match="unknown phone region"):
        RedactionOptions(phone_regions=("US", "XX"))


@pytest.mark.parametrize(
    "iban",
    [
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
        "ES91 2100 0418 4502 0005 1332",
        "IT60 X054 2811 1010 0000 0123 456",
    ],
)
def test_ibans(iban: str) -> None:
    assert stdnum_iban.is_valid(iban)
    assert redact(f"IBAN: {iban}, thanks") == "IBAN: [IBAN], thanks"
    assert redact(f"pay to {iban.lower()} then call") == "pay to [IBAN] then call"


def test_iban_check_digits_are_checked() -> None:
    # the same account with wrong check digits is no IBAN (and its digits no phone number or card)
    assert redact("DE88 3704 0044 0532 0130 00") == "DE88 3704 0044 0532 0130 00"


@pytest.mark.parametrize("ssn", ["536-90-4399", "536 90 4399", "536904399", "212-09-7694", "212097694"])
def test_us_social_security_numbers(ssn: str) -> None:
    assert redact(f"my SSN is {ssn}.") == "my SSN is [SSN]."


@pytest.mark.parametrize("text", ["000-12-3456", "666-12-3456", "900-12-3456", "536-00-4399", "536-90-0000"])
def test_impossible_ssns_are_not_ssns(text: str) -> None:
    # area 000, 666 and 9xx, group 00 and serial 0000 are never issued
    assert "[SSN]" not in redact(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("server 192.168.1.10 is down", "server [IP] is down"),
        ("from 10.0.0.1:8080 and 8.8.8.8.", "from [IP]:8080 and [IP]."),
        ("v6 2001:db8::8a2e:370:7334 and fe80::1%eth0", "v6 [IP] and [IP]"),
        ("full 2001:0db8:0000:0000:0000:ff00:0042:8329 here", "full [IP] here"),
        ("mapped ::ffff:192.0.2.1", "mapped [IP]"),
        ("release 1.2.3.4", "release [IP]"),  # a four-part version is a valid address: the README says so
        ("no ip 256.1.1.1 or 1.2.3 or 10:30:00 or std::vector", "no ip 256.1.1.1 or 1.2.3 or 10:30:00 or std::vector"),
    ],
)
def test_ip_addresses(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_ip_addresses_can_be_kept() -> None:
    keep_ips = RedactionOptions(redact_ips=False)
    text = "server 192.168.1.10 and 2001:db8::1 mail ops@example.com"
    out, counts = redact_texts([text], keep_ips)
    assert out.to_pylist() == ["server 192.168.1.10 and 2001:db8::1 mail [EMAIL]"]
    assert counts.tolist() == [1]


def test_mixed_message_counts_every_item() -> None:
    text = (
        "I'm Ana, ana@example.com, +44 7400 123456, IBAN GB82 WEST 1234 5698 7654 32, SSN 536-90-4399, "
        "card 4111 1111 1111 1111, from 10.1.2.3, see https://example.com/x, order #48213 for $1,299.99 on 2024-05-12"
    )
    out, counts = redact_texts([text])
    assert out.to_pylist() == [
        "I'm Ana, [EMAIL], [PHONE], IBAN [IBAN], SSN [SSN], card [CARD], from [IP], see [URL], "
        "order #48213 for $1,299.99 on 2024-05-12"
    ]
    assert counts.tolist() == [7]


# --- every field of a record ------------------------------------------------------------------------------


def test_redact_record_covers_every_string_field() -> None:
    record = {
        "message_id": "m-1",
        "user_id": "ana@example.com",
        "text": "call +44 7400 123456",
        "meta": {"note": "IBAN DE89 3704 0044 0532 0130 00", "ips": ["10.1.2.3", 7], "ok": True},
        "sent_at": None,
        "count": 3,
        "phone": 4155552671,
        "ssn": 536904399,
        "flag": False,
    }
    assert redact_record(record) == {
        "message_id": "m-1",
        "user_id": "[EMAIL]",
        "text": "call [PHONE]",
        "meta": {"note": "IBAN [IBAN]", "ips": ["[IP]", 7], "ok": True},
        "sent_at": None,
        "count": 3,
        "phone": "[PHONE]",
        "ssn": "[SSN]",
        "flag": False,
    }
    assert record["user_id"] == "ana@example.com"  # the input is left as it was


def test_redact_record_keeps_ids_and_times_readable() -> None:
    record = {
        "conversation_id": "c-20261102-0001",
        "message_id": "c-20261102-0001-03",
        "sent_at": "2026-11-02T10:00:00+01:00",
        "started_at": "2026-11-02 09:59:59",
        "Id": 42,
    }
    assert redact_record(record) == record


# --- pseudonymisation ------------------------------------------------------------------------------------


def test_pseudonymize_is_keyed_stable_and_keeps_distinct_ids_distinct() -> None:
    key = "s3cr3t-key-for-tests"
    ids = [f"user-{i % 500}" for i in range(2000)] + [None, "ana@example.com"]
    out = pseudonymize(ids, key)
    values = out.to_pylist()
    assert len(values) == len(ids)
    assert values[-2] is None
    assert len({v for v in values if v}) == len({i for i in ids if i}) == 501
    assert values[:500] == values[500:1000]  # the same id gets the same pseudonym
    assert pseudonymize(pa.array(ids), key).to_pylist() == values  # stable across calls and input types
    assert pseudonymize(ids, "another key").to_pylist()[:500] != values[:500]
    expected = hmac.new(key.encode(), b"user-0", hashlib.sha256).hexdigest()
    assert values[0] == expected
    joined = "".join(v for v in values if v)
    assert key not in joined and "ana@example.com" not in joined and "user-" not in joined


def test_pseudonymize_rejects_an_empty_key() -> None:
    with pytest.raises(ValueError, match="key is empty") as info:
        pseudonymize(["u1"], "")
    assert "u1" not in str(info.value)


def test_phone_numbers_in_lists_and_with_no_break_spaces() -> None:
    text = "à joindre :\n06\u202f12\u202f34\u202f56\u202f78\n+44\u00a07400\u00a0123456\n0612345678 (élève)"
    assert redact_one(text) == ("à joindre :\n[PHONE]\n[PHONE]\n[PHONE] (élève)", 3)


def test_a_number_after_digit_spam_is_found() -> None:
    out, count = redact_one("1 " * 2000 + "call 0612345678")
    assert out.endswith("call [PHONE]") and count == 1


def test_skipping_regions_never_changes_what_libphonenumber_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cheap region check (`_may_match`) is a necessary condition of validity: with it or without
    it the matcher finds the same numbers, on example numbers of every type and on random digit runs."""
    rng = random.Random(3)
    windows = []
    for region in (*DEFAULT_PHONE_REGIONS, "CA", "GG", "VA"):
        for number_type in range(11):  # PhoneNumberType.FIXED_LINE .. VOICEMAIL
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            for number_format in (PhoneNumberFormat.NATIONAL, PhoneNumberFormat.INTERNATIONAL):
                windows.append(f"at {phonenumbers.format_number(example, number_format)} ok")
            national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
            windows.append("at " + "".join(str(rng.randrange(10)) if c.isdigit() else c for c in national) + " ok")
    for _ in range(300):
        groups = [str(rng.randrange(10 ** rng.randrange(1, 6))) for _ in range(rng.randrange(1, 5))]
        windows.append("is " + rng.choice(["", "0"]) + rng.choice([" ", "-", ".", "/"]).join(groups) + " .")

    def matches(window: str) -> tuple[tuple[int, int], ...]:
        runs = redact_module._PHONE_RUN.finditer(window)
        return tuple(m for run in runs for m in redact_module._matches_in(window, *run.span(), DEFAULT_PHONE_REGIONS))

    gated = [matches(w) for w in windows]
    monkeypatch.setattr(redact_module, "_may_match", lambda region, groups: True)
    assert [matches(w) for w in windows] == gated
    assert sum(1 for found in gated if found) > 50  # the examples are found
