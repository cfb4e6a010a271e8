//! The encrypted field format, version 1 (specified in the [`privacy`](super) module docs).

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use smsys_core::{EventId, StreamId};

use super::keys::DataKey;

/// The one member of an encrypted field's object.
pub(crate) const MARK: &str = "$personal";
/// The format version written.
pub(crate) const VERSION: u64 = 1;
/// Domain separation of the nonce and associated data.
const DOMAIN: &[u8] = b"smsys/personal/v1";

/// Why an encrypted field could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EnvelopeError {
    #[error("encrypted field {pointer} is malformed: {why}")]
    Malformed { pointer: String, why: &'static str },
    #[error("encrypted field {pointer} does not open with key {key}: altered, or another key")]
    Unauthentic { pointer: String, key: String },
    #[error("encrypted field {pointer} does not hold JSON: {source}")]
    Json {
        pointer: String,
        source: serde_json::Error,
    },
}

/// One encrypted field, as stored.
pub(crate) struct Envelope<'a> {
    pub(crate) key: &'a str,
    ciphertext: &'a str,
}

/// The bytes bound to a field: domain, event id, pointer. Its SHA-256's first 12 bytes are
/// the nonce; the bytes themselves are the associated data.
fn binding(event: EventId, pointer: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(DOMAIN.len() + 17 + pointer.len());
    bytes.extend_from_slice(DOMAIN);
    bytes.push(0);
    bytes.extend_from_slice(event.as_uuid().as_bytes());
    bytes.extend_from_slice(pointer.as_bytes());
    bytes
}

fn nonce(binding: &[u8]) -> Nonce {
    let digest = Sha256::digest(binding);
    *Nonce::from_slice(&digest[..12])
}

/// `value` encrypted under `key` (registered as `key_id`) for field `pointer` of `event`.
pub(crate) fn seal(
    key: &DataKey,
    key_id: &StreamId,
    event: EventId,
    pointer: &str,
    value: &Value,
) -> Value {
    let plaintext = value.to_string();
    let aad = binding(event, pointer);
    let cipher = Aes256GcmSiv::new(key.bytes().into());
    let payload = Payload {
        msg: plaintext.as_bytes(),
        aad: &aad,
    };
    // AES-GCM-SIV fails only on inputs longer than 2^36 bytes, far past any event's size.
    let ciphertext = cipher
        .encrypt(&nonce(&aad), payload)
        .unwrap_or_else(|_| unreachable!("a field is far shorter than 64 GiB"));
    let mut inner = Map::new();
    inner.insert("v".to_owned(), Value::from(VERSION));
    inner.insert("key".to_owned(), Value::from(key_id.as_str()));
    inner.insert("ct".to_owned(), Value::from(STANDARD.encode(ciphertext)));
    let mut outer = Map::new();
    outer.insert(MARK.to_owned(), Value::Object(inner));
    Value::Object(outer)
}

/// Whether `value` is an object with a `$personal` member (an encrypted field, or something
/// that would be mistaken for one).
pub(crate) fn is_marked(value: &Value) -> bool {
    value.as_object().is_some_and(|o| o.contains_key(MARK))
}

/// The envelope `value` holds, if it is one.
pub(crate) fn parse<'a>(value: &'a Value, pointer: &str) -> Result<Envelope<'a>, EnvelopeError> {
    let malformed = |why| EnvelopeError::Malformed {
        pointer: pointer.to_owned(),
        why,
    };
    let outer = value
        .as_object()
        .ok_or_else(|| malformed("not an object"))?;
    if outer.len() != 1 {
        return Err(malformed("members beside $personal"));
    }
    let inner = outer
        .get(MARK)
        .and_then(Value::as_object)
        .ok_or_else(|| malformed("$personal is not an object"))?;
    if inner.get("v").and_then(Value::as_u64) != Some(VERSION) {
        return Err(malformed("unknown format version"));
    }
    let text = |name| inner.get(name).and_then(Value::as_str);
    Ok(Envelope {
        key: text("key").ok_or_else(|| malformed("no key id"))?,
        ciphertext: text("ct").ok_or_else(|| malformed("no ciphertext"))?,
    })
}

/// The field's value, decrypted with `key`.
pub(crate) fn open(
    envelope: &Envelope<'_>,
    key: &DataKey,
    event: EventId,
    pointer: &str,
) -> Result<Value, EnvelopeError> {
    let ciphertext =
        STANDARD
            .decode(envelope.ciphertext)
            .map_err(|_| EnvelopeError::Malformed {
                pointer: pointer.to_owned(),
                why: "ciphertext is not base64",
            })?;
    let aad = binding(event, pointer);
    let cipher = Aes256GcmSiv::new(key.bytes().into());
    let plaintext = cipher
        .decrypt(
            &nonce(&aad),
            Payload {
                msg: &ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| EnvelopeError::Unauthentic {
            pointer: pointer.to_owned(),
            key: envelope.key.to_owned(),
        })?;
    serde_json::from_slice(&plaintext).map_err(|source| EnvelopeError::Json {
        pointer: pointer.to_owned(),
        source,
    })
}

/// Whether `value` holds an object with a `$personal` member anywhere.
pub(crate) fn holds_envelope(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key(MARK) || map.values().any(holds_envelope),
        Value::Array(items) => items.iter().any(holds_envelope),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => false,
    }
}

/// Adds to `out` the key ids the encrypted fields in `value` name, unchecked (opening a field
/// checks its envelope): what a reader fetches before it opens a page of events.
pub(crate) fn key_ids<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Object(envelope)) = map.get(MARK) {
                if let Some(Value::String(key)) = envelope.get("key") {
                    out.push(key);
                }
                return;
            }
            for child in map.values() {
                key_ids(child, out);
            }
        }
        Value::Array(items) => {
            for child in items {
                key_ids(child, out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// Calls `each` with the pointer and value of every object with a `$personal` member in
/// `value`, outermost first (its insides are not visited).
pub(crate) fn visit_marked<E>(
    value: &mut Value,
    each: &mut impl FnMut(&str, &mut Value) -> Result<(), E>,
) -> Result<(), E> {
    fn walk<E>(
        value: &mut Value,
        path: &mut String,
        each: &mut impl FnMut(&str, &mut Value) -> Result<(), E>,
    ) -> Result<(), E> {
        if is_marked(value) {
            return each(path, value);
        }
        let len = path.len();
        match value {
            Value::Object(map) => {
                for (name, child) in map.iter_mut() {
                    path.push('/');
                    path.push_str(&name.replace('~', "~0").replace('/', "~1"));
                    walk(child, path, each)?;
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter_mut().enumerate() {
                    path.push('/');
                    path.push_str(&i.to_string());
                    walk(child, path, each)?;
                    path.truncate(len);
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
        Ok(())
    }
    walk(value, &mut String::new(), each)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(n: u128) -> EventId {
        EventId::from_uuid(uuid::Uuid::from_u128(n)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn stream() -> StreamId {
        "incident-INC-1".parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn sealing_is_deterministic_and_opens_only_where_it_was_sealed() {
        let key = DataKey::from_bytes([7; 32]);
        let value = json!("printer on fire, call 555-0100");
        let a = seal(&key, &stream(), id(1), "/summary", &value);
        assert_eq!(a, seal(&key, &stream(), id(1), "/summary", &value));
        assert_ne!(a, seal(&key, &stream(), id(2), "/summary", &value));
        assert!(!a.to_string().contains("555"));
        let envelope = parse(&a, "/summary").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(envelope.key, "incident-INC-1");
        assert_eq!(open(&envelope, &key, id(1), "/summary").ok(), Some(value));
        assert!(open(&envelope, &key, id(2), "/summary").is_err());
        assert!(open(&envelope, &key, id(1), "/description").is_err());
        let other = DataKey::from_bytes([8; 32]);
        assert!(open(&envelope, &other, id(1), "/summary").is_err());
    }

    #[test]
    fn marked_values_are_found_with_their_pointers() {
        let mut payload = json!({"a/b": {"$personal": {}}, "list": [1, {"$personal": 2}], "c": 3});
        let mut seen = Vec::new();
        let walked: Result<(), ()> = visit_marked(&mut payload, &mut |p, _| {
            seen.push(p.to_owned());
            Ok(())
        });
        assert!(walked.is_ok());
        seen.sort();
        assert_eq!(seen, ["/a~1b", "/list/1"]);
    }
}
