//! The JSON envelope actionhero stores for every cache entry:
//! `{"value":…,"expireTimestamp":…,"createdAt":…,"readAt":…}`, keys in that
//! order, numbers as JavaScript writes them, so that JS and native nodes
//! produce the same bytes.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::store::{Loaded, Touch};

/// Builds the envelope text. `value_json` is already JSON (JSON.stringify's
/// output), so it is inserted as it is rather than parsed and re-encoded.
pub fn encode(
  value_json: &str,
  expire_timestamp: Option<f64>,
  created_at: Option<f64>,
  read_at: Option<f64>,
) -> String {
  let mut text = String::with_capacity(value_json.len() + 90);
  text.push_str("{\"value\":");
  text.push_str(value_json);
  text.push_str(",\"expireTimestamp\":");
  push_js_number(&mut text, expire_timestamp);
  text.push_str(",\"createdAt\":");
  push_js_number(&mut text, created_at);
  text.push_str(",\"readAt\":");
  push_js_number(&mut text, read_at);
  text.push('}');
  text
}

/// A stored envelope, borrowing the value's JSON text from the stored string.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<'a> {
  #[serde(borrow, default)]
  pub value: Option<&'a RawValue>,
  #[serde(default)]
  pub expire_timestamp: Option<f64>,
  #[serde(default)]
  pub created_at: Option<f64>,
  #[serde(default)]
  pub read_at: Option<f64>,
}

impl<'a> Envelope<'a> {
  pub fn parse(text: &'a str) -> Option<Self> {
    // serde would also read a struct from an array; an envelope is an object.
    if !text.trim_start().starts_with('{') {
      return None;
    }
    serde_json::from_str(text).ok()
  }

  /// JSON.stringify drops a property whose value is `undefined`, so an entry
  /// written by JS may have no `value` at all; it reads back as null.
  pub fn value_json(&self) -> &'a str {
    self.value.map_or("null", RawValue::get)
  }

  pub fn is_expired(&self, now: f64) -> bool {
    self.expire_timestamp.is_some_and(|at| at < now)
  }

  /// The entry after a read at `touch.now`: the new envelope text, what the
  /// read answers, and the new physical lifetime when the expiry moved
  /// (None: keep the lifetime the entry has).
  pub fn touched(&self, touch: Touch) -> (String, Loaded, Option<u64>) {
    let refresh = touch.refresh.filter(|_| self.expire_timestamp.is_some());
    let expire_timestamp = refresh.map_or(self.expire_timestamp, |r| Some(r.expire_timestamp));
    let text = encode(self.value_json(), expire_timestamp, self.created_at, Some(touch.now));
    let loaded = Loaded {
      value_json: self.value_json().to_owned(),
      expire_timestamp,
      created_at: self.created_at,
      last_read_at: self.read_at,
    };
    (text, loaded, refresh.map(|r| r.ttl_secs))
  }
}

/// Writes a number the way JavaScript's JSON.stringify does for the values
/// the cache writes (integers without a fraction, others in shortest form),
/// or `null`. This runs on every save and load, hence no `format!`.
pub fn push_js_number(text: &mut String, n: Option<f64>) {
  match n {
    None => text.push_str("null"),
    Some(n) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => {
      text.push_str(itoa::Buffer::new().format(n as i64));
    }
    Some(n) => text.push_str(&n.to_string()),
  }
}

pub fn js_number(n: f64) -> String {
  let mut text = String::new();
  push_js_number(&mut text, Some(n));
  text
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn encodes_like_json_stringify() {
    assert_eq!(
      encode(r#"{"a":[1,2]}"#, Some(1700000001000.0), Some(1700000000000.0), None),
      r#"{"value":{"a":[1,2]},"expireTimestamp":1700000001000,"createdAt":1700000000000,"readAt":null}"#
    );
    assert_eq!(encode("1.5", None, Some(1.0), Some(2.5)), r#"{"value":1.5,"expireTimestamp":null,"createdAt":1,"readAt":2.5}"#);
  }

  #[test]
  fn parses_keeping_the_value_text() {
    let text = r#"{"value":{"b":[],"a":1e3},"expireTimestamp":null,"createdAt":5,"readAt":7}"#;
    let envelope = Envelope::parse(text).unwrap();
    assert_eq!(envelope.value_json(), r#"{"b":[],"a":1e3}"#);
    assert_eq!(envelope.created_at, Some(5.0));
    assert_eq!(envelope.read_at, Some(7.0));
    assert!(!envelope.is_expired(1e15));
  }

  #[test]
  fn a_missing_value_reads_as_null_and_garbage_is_rejected() {
    let envelope = Envelope::parse(r#"{"expireTimestamp":10,"createdAt":1,"readAt":null}"#).unwrap();
    assert_eq!(envelope.value_json(), "null");
    assert!(envelope.is_expired(11.0));
    assert!(!envelope.is_expired(10.0));
    assert!(Envelope::parse("not json").is_none());
    assert!(Envelope::parse("[1]").is_none());
  }
}
