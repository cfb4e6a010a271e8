//! Tamper evidence: the per-stream SHA-256 hash chain, its canonical encoding and the verifier.
//!
//! # The canonical encoding (for auditors who re-implement the check)
//!
//! Every recorded event carries `hash = SHA-256(canonical)`, written as 64 lowercase hex digits,
//! where `canonical` is the UTF-8 bytes of one JSON object with exactly these members:
//!
//! | key | value |
//! |---|---|
//! | `actor` | string |
//! | `causation_id` | string (hyphenated lowercase UUID) or `null` |
//! | `correlation_id` | string (hyphenated lowercase UUID) or `null` |
//! | `event_id` | string (hyphenated lowercase UUID) |
//! | `event_type` | string |
//! | `extensions` | object (`{}` when empty) |
//! | `occurred_at` | string `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, six fractional digits) |
//! | `payload` | the payload, any JSON value |
//! | `previous_hash` | the hex hash of the previous event of the same stream, or `null` for version 1 |
//! | `recorded_at` | string, same form as `occurred_at` |
//! | `schema_version` | integer |
//! | `stream` | string `category-entity` |
//! | `tenant` | string or `null` |
//! | `version` | integer |
//!
//! Canonical JSON here means: object members sorted by the bytes of their UTF-8 keys, at every
//! depth; no whitespace outside strings; strings escaped as RFC 8259 requires and no more
//! (`"` `\` as `\"` `\\`, U+0008/0009/000A/000C/000D as `\b \t \n \f \r`, other control characters
//! as `\u00XX` with lowercase hex, everything else as raw UTF-8); integers in plain decimal;
//! other numbers in the shortest form that reads back to the same IEEE-754 double; `true`,
//! `false`, `null` as written. Global positions are deliberately not covered: they are assigned
//! by the backend and their order is checked separately by the verifier.
//!
//! Payloads must read back exactly for a stored event to hash as it did when recorded: smsys
//! enables serde_json's `float_roundtrip`, so a stored float parses to the same double.
//!
//! The chain is per stream, so unrelated streams never wait for each other. An edited event
//! breaks its own hash; a deleted or reordered event breaks the next event's link or the version
//! sequence. Removing a whole stream, moving events or cutting the log's tail is only visible
//! to seals ([`crate::seal`]), up to the latest one; ARCHITECTURE.md lists what is detected.

use std::fmt;
use std::str::FromStr;

use std::io::Write as _;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::event::{EventData, TenantId};
use crate::stream::{StreamId, Version};

mod verify;

pub use verify::{
    ChainBreak, ChainFault, ChainVerifier, UndecodableRow, VerifyReport, verify_events,
};

/// A SHA-256 hash, shown and serialised as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventHash([u8; 32]);

impl EventHash {
    /// Wraps raw hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A hash that could not be read from text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a hash: expected 64 hex digits, found {0:?}")]
pub struct ParseHashError(String);

impl FromStr for EventHash {
    type Err = ParseHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseHashError(s.chars().take(80).collect());
        if s.len() != 64 || !s.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Self(out))
    }
}

impl TryFrom<String> for EventHash {
    type Error = ParseHashError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<EventHash> for String {
    fn from(value: EventHash) -> Self {
        value.to_string()
    }
}

impl EventHash {
    /// The 64 lowercase hex digits.
    fn hex(&self) -> [u8; 64] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        out
    }
}

impl fmt::Display for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The digits are ASCII by construction.
        f.write_str(std::str::from_utf8(&self.hex()).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventHash({self})")
    }
}

/// Writes `value` in the canonical JSON form described in the module docs.
pub fn write_canonical_json(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Object(map) => {
            out.push(b'{');
            // serde_json's default map is ordered by key bytes already; with its
            // `preserve_order` feature it is not, and the keys are sorted here.
            if map.keys().is_sorted_by(|a, b| a.as_bytes() <= b.as_bytes()) {
                write_members(out, map.iter());
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                write_members(out, entries.into_iter());
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical_json(out, item);
            }
            out.push(b']');
        }
        Value::String(s) => write_string(out, s),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Null => out.extend_from_slice(b"null"),
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.push(b'"');
    // Most text needs no escape: one pass without early exit (it vectorises) tells.
    let needs_escape = bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escape {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        // Only ASCII control characters, '"' and '\\' are escaped; every other byte, including
        // each byte of a multi-byte UTF-8 character, is copied as it is.
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        out.extend_from_slice(escape);
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

fn write_members<'a>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'a String, &'a Value)>) {
    for (i, (key, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(out, key);
        out.push(b':');
        write_canonical_json(out, value);
    }
}

fn write_key(out: &mut Vec<u8>, first: bool, key: &str) {
    if !first {
        out.push(b',');
    }
    write_string(out, key);
    out.push(b':');
}

/// A key of the canonical form's own (plain ASCII, nothing to escape).
fn write_known_key(out: &mut Vec<u8>, first: bool, key: &'static str) {
    if !first {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

fn write_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(s) => write_string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_uuid(out: &mut Vec<u8>, uuid: Option<uuid::Uuid>) {
    match uuid {
        Some(uuid) => {
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            out.push(b'"');
            out.extend_from_slice(uuid.hyphenated().encode_lower(&mut buf).as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// `value` in decimal, left-padded with zeros to at least `width` digits (at most 10).
fn write_digits(out: &mut Vec<u8>, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut start = digits.len();
    let mut v = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start.min(digits.len() - width.min(digits.len()))..]);
}

fn write_timestamp(out: &mut Vec<u8>, t: DateTime<Utc>) {
    let t = t.naive_utc();
    out.push(b'"');
    match u32::try_from(t.year()) {
        Ok(year) => write_digits(out, year, 4),
        // Years before 0 keep chrono's sign; nothing in a service desk gets there.
        Err(_) => {
            let _ = write!(out, "{:05}", t.year());
        }
    }
    for (sep, value) in [
        (b'-', t.month()),
        (b'-', t.day()),
        (b'T', t.hour()),
        (b':', t.minute()),
        (b':', t.second()),
    ] {
        out.push(sep);
        write_digits(out, value, 2);
    }
    out.push(b'.');
    write_digits(out, t.and_utc().timestamp_subsec_micros(), 6);
    out.extend_from_slice(b"Z\"");
}

/// The canonical bytes an event's hash is taken over (see the module docs).
pub fn canonical_content(
    previous_hash: Option<&EventHash>,
    stream: &StreamId,
    version: Version,
    data: &EventData,
    recorded_at: DateTime<Utc>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_canonical_content(&mut out, previous_hash, stream, version, data, recorded_at);
    out
}

fn write_canonical_content(
    out: &mut Vec<u8>,
    previous_hash: Option<&EventHash>,
    stream: &StreamId,
    version: Version,
    data: &EventData,
    recorded_at: DateTime<Utc>,
) {
    let meta = data.metadata();
    out.push(b'{');
    write_known_key(out, true, "actor");
    write_string(out, meta.actor().as_str());
    write_known_key(out, false, "causation_id");
    write_uuid(out, meta.causation_id().map(|c| c.as_uuid()));
    write_known_key(out, false, "correlation_id");
    write_uuid(out, meta.correlation_id().map(|c| c.as_uuid()));
    write_known_key(out, false, "event_id");
    write_uuid(out, Some(meta.event_id().as_uuid()));
    write_known_key(out, false, "event_type");
    write_string(out, data.event_type().as_str());
    write_known_key(out, false, "extensions");
    out.push(b'{');
    // BTreeMap<String, _> iterates in byte order of the keys.
    for (i, (key, value)) in meta.extensions().iter().enumerate() {
        write_key(out, i == 0, key);
        write_canonical_json(out, value);
    }
    out.push(b'}');
    write_known_key(out, false, "occurred_at");
    write_timestamp(out, meta.occurred_at());
    write_known_key(out, false, "payload");
    write_canonical_json(out, data.payload());
    write_known_key(out, false, "previous_hash");
    match previous_hash {
        Some(h) => {
            out.push(b'"');
            out.extend_from_slice(&h.hex());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    write_known_key(out, false, "recorded_at");
    write_timestamp(out, recorded_at);
    write_known_key(out, false, "schema_version");
    let _ = write!(out, "{}", data.schema_version());
    write_known_key(out, false, "stream");
    write_string(out, stream.as_str());
    write_known_key(out, false, "tenant");
    write_opt_str(out, meta.tenant().map(TenantId::as_str));
    write_known_key(out, false, "version");
    let _ = write!(out, "{}", version.get());
    out.push(b'}');
}

/// The hash of an event recorded at `stream`/`version` after `previous_hash`.
pub fn event_hash(
    previous_hash: Option<&EventHash>,
    stream: &StreamId,
    version: Version,
    data: &EventData,
    recorded_at: DateTime<Utc>,
) -> EventHash {
    thread_local! {
        // The canonical bytes of one event at a time: hashing reuses one buffer per thread.
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut bytes) => {
            bytes.clear();
            write_canonical_content(
                &mut bytes,
                previous_hash,
                stream,
                version,
                data,
                recorded_at,
            );
            EventHash(Sha256::digest(&*bytes).into())
        }
        // Only a re-entrant call gets here; it pays for its own buffer.
        Err(_) => EventHash(
            Sha256::digest(canonical_content(
                previous_hash,
                stream,
                version,
                data,
                recorded_at,
            ))
            .into(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_and_escapes() {
        let mut out = Vec::new();
        write_canonical_json(
            &mut out,
            &json!({"b": [1, 2.5, "x\"\n\u{1}é"], "a": {"z": null, "y": true}, "B": -3}),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"B":-3,"a":{"y":true,"z":null},"b":[1,2.5,"x\"\n\u0001é"]}"#
        );
    }

    proptest::proptest! {
        #[test]
        fn timestamps_encode_as_rfc3339_with_microseconds(
            micros in -62_135_596_800_000_000i64..253_402_300_799_999_999i64,
        ) {
            let t = DateTime::from_timestamp_micros(micros).unwrap();
            let mut out = Vec::new();
            write_timestamp(&mut out, t);
            let expected = format!("\"{}\"", t.format("%Y-%m-%dT%H:%M:%S%.6fZ"));
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Canonical JSON is JSON: it reads back to the same value, and writing it again gives
        /// the same bytes.
        #[test]
        fn canonical_json_reads_back_unchanged(value in json_value()) {
            let mut out = Vec::new();
            write_canonical_json(&mut out, &value);
            let back: Value = serde_json::from_slice(&out).unwrap();
            proptest::prop_assert_eq!(&back, &value);
            let mut again = Vec::new();
            write_canonical_json(&mut again, &back);
            proptest::prop_assert_eq!(again, out);
        }
    }

    #[test]
    fn hash_text_round_trips_and_rejects_garbage() {
        let h = EventHash::from_bytes([0xab; 32]);
        let text = h.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<EventHash>().unwrap(), h);
        assert!("abc".parse::<EventHash>().is_err());
        assert!("zz".repeat(32).parse::<EventHash>().is_err());
        assert!("é".repeat(32).parse::<EventHash>().is_err());
    }
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::event::{
        Actor, CausationId, CorrelationId, EventData, EventId, EventType, Metadata, TenantId,
    };
    use chrono::TimeZone;

    /// An event using every field, with a pinned canonical form and hash: the encoding is a
    /// contract with auditors and must never drift.
    fn pinned() -> (StreamId, EventData, DateTime<Utc>, EventHash) {
        let at = Utc.with_ymd_and_hms(2026, 3, 29, 1, 30, 5).unwrap()
            + chrono::TimeDelta::microseconds(42);
        let meta = Metadata::new(
            EventId::from_uuid(uuid::Uuid::from_u128(
                0x0190_0000_0000_7000_8000_0000_0000_0001,
            ))
            .unwrap(),
            Actor::new("agent:ana \"the\" \\ admin").unwrap(),
            at,
        )
        .with_correlation(CorrelationId::from_uuid(uuid::Uuid::from_u128(2)).unwrap())
        .with_causation(CausationId::from_uuid(uuid::Uuid::from_u128(3)).unwrap())
        .with_tenant(TenantId::new("acme").unwrap())
        .with_extension("z", serde_json::json!([1.5, -2, "\u{1}\t"]))
        .unwrap()
        .with_extension("a", serde_json::json!({"y": null, "x": true}))
        .unwrap();
        let data = EventData::new(
            EventType::new("incident.logged").unwrap(),
            2,
            serde_json::json!({"summary": "Drucker brennt 🔥", "n": 12_345_678_901_u64, "b": [false]}),
            meta,
        )
        .unwrap();
        let previous: EventHash = "ab".repeat(32).parse().unwrap();
        let stream: StreamId = "incident-INC-7".parse().unwrap();
        let hash = event_hash(Some(&previous), &stream, Version::new(9), &data, at);
        (stream, data, at, hash)
    }

    #[test]
    fn the_canonical_encoding_and_hash_are_pinned() {
        let (stream, data, at, hash) = pinned();
        let previous: EventHash = "ab".repeat(32).parse().unwrap();
        let text = String::from_utf8(canonical_content(
            Some(&previous),
            &stream,
            Version::new(9),
            &data,
            at,
        ))
        .unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"actor":"agent:ana \"the\" \\ admin","causation_id":"00000000-0000-0000-0000-000000000003","#,
                r#""correlation_id":"00000000-0000-0000-0000-000000000002","event_id":"01900000-0000-7000-8000-000000000001","#,
                r#""event_type":"incident.logged","extensions":{"a":{"x":true,"y":null},"z":[1.5,-2,"\u0001\t"]},"#,
                r#""occurred_at":"2026-03-29T01:30:05.000042Z","payload":{"b":[false],"n":12345678901,"summary":"Drucker brennt 🔥"},"#,
                r#""previous_hash":"abababababababababababababababababababababababababababababababab","#,
                r#""recorded_at":"2026-03-29T01:30:05.000042Z","schema_version":2,"stream":"incident-INC-7","tenant":"acme","version":9}"#
            )
        );
        assert_eq!(hash.to_string(), PINNED_HASH);
    }

    // Re-computed independently: SHA-256 of the text above, and of a Python canonicaliser
    // (`json.dumps(..., ensure_ascii=False)` with keys sorted by their UTF-8 bytes) of it.
    const PINNED_HASH: &str = "69bf71832a73231737244f4638ba5aa35122c15df0bf0a36d51468611b922b19";
}
