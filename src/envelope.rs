//! The JSON envelope actionhero stores for every cache entry:
//! `{"value":…,"expireTimestamp":…,"createdAt":…,"readAt":…}`, keys in that
//! order, numbers as JavaScript writes them, so that JS and native nodes
//! produce the same bytes. Also what a read does to an entry: its new
//! envelope and its new physical lifetime, the same on every store.

use std::mem::MaybeUninit;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::value::RawValue;

/// Now as a Unix time in ms, as `Date.now()` gives it.
pub fn now_ms() -> f64 {
  SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_millis() as f64)
}

/// The clock envelope times come from. actionhero's come from the caller's
/// `Date`, which a test may have faked (jest's fake timers, and their
/// `setSystemTime`), and so do these; the lifetimes a store keeps run on the
/// system clock, as Redis's do.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
  System,
  /// What the caller's `Date.now()` read at the call, which stands for the
  /// whole call (a retry's attempts too): a faked `Date` stands still until
  /// the test moves it, and a call on its way to Redis is stamped as of the
  /// call, as actionhero stamps a save.
  Caller(f64),
}

impl Clock {
  /// The caller's clock from what its `Date.now()` read at the call, or the
  /// system's when it was not read (a `Date` that is not faked) or read
  /// something that is no time.
  pub fn of_caller(now: Option<f64>) -> Self {
    match now {
      Some(read) if read.is_finite() => Clock::Caller(read),
      _ => Clock::System,
    }
  }

  pub fn now(self) -> f64 {
    match self {
      Clock::System => now_ms(),
      Clock::Caller(read) => read,
    }
  }

  /// A read's touch, made now, without a refresh.
  pub fn touch(self) -> Touch {
    let now = self.now();
    let skew = match self {
      Clock::System => 0.0,
      Clock::Caller(read) => read - now_ms(),
    };
    Touch { now, skew, refresh: None }
  }
}

/// Now as a Unix time in ms with its fraction: a deadline set from an
/// `expireTimestamp` then falls on the first instant of that millisecond.
pub fn exact_now_ms() -> f64 {
  SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A time in ms as a Duration; negative times are zero, times past what a
/// Duration holds are its largest.
pub fn duration_ms(ms: f64) -> Duration {
  Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).unwrap_or(Duration::MAX)
}

/// The largest time offset the cache accepts: JavaScript's Date range, far
/// beyond any real lifetime, small enough that no clock or Redis arithmetic
/// on it overflows.
pub const MAX_MS: f64 = 8.64e15;

/// How long a key stays in the store, as actionhero's Redis calls leave it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lifetime {
  /// No TTL (a plain `SET`).
  Forever,
  /// `EXPIRE secs`.
  Secs(u64),
  /// Until this Unix time in ms, which is already past its end (as the
  /// entry's `expireTimestamp` is, see [`Envelope::is_expired`]).
  Until(f64),
  /// `EXPIRE` with zero or less: the key is deleted at once.
  Gone,
}

/// A read's changes to an entry: `readAt` becomes `now`, and, with
/// `refresh`, an entry that expires gets a new expiry.
#[derive(Clone, Copy, Debug)]
pub struct Touch {
  pub now: f64,
  /// How far `now` (the caller's clock) is ahead of the system clock, in ms:
  /// a lifetime that ends at an envelope time ends this much earlier on the
  /// system clock.
  pub skew: f64,
  pub refresh: Option<Refresh>,
}

/// A new logical expiry (`expireTimestamp`) with its physical lifetime.
#[derive(Clone, Copy, Debug)]
pub struct Refresh {
  pub expire_timestamp: f64,
  pub lifetime: Lifetime,
}

/// An entry as `load` returns it: the value's JSON text (None when the
/// envelope has no `value`, which JS reads as undefined) and the envelope's
/// timestamps, `last_read_at` being the read before this one.
#[derive(Debug, PartialEq)]
pub struct Loaded {
  pub value_json: Option<String>,
  pub expire_timestamp: Option<f64>,
  pub created_at: Option<f64>,
  pub last_read_at: Option<f64>,
}

/// Builds the envelope text from its head (the value's JSON, already JSON as
/// JSON.stringify wrote it, inserted as it is rather than parsed and
/// re-encoded) and the timestamps.
pub fn encode(head: Head, expire_timestamp: Option<f64>, created_at: Option<f64>, read_at: Option<f64>) -> String {
  let mut text = head.0;
  push_tail(&mut text, expire_timestamp, created_at, read_at);
  text
}

/// The envelope's start, `{"value":…,` or, without a value (JSON.stringify
/// leaves `undefined` out), `{`, with room for the tail behind it.
pub struct Head(String);

const VALUE_KEY: &str = "{\"value\":";

/// Room for the tail in a head's text, enough for its usual 13-digit times.
const TAIL_ROOM: usize = 90;

impl Head {
  pub fn new(value_json: Option<&str>) -> Head {
    let mut text = String::with_capacity(value_json.map_or(0, str::len) + VALUE_KEY.len() + 1 + TAIL_ROOM);
    match value_json {
      Some(value_json) => {
        text.push_str(VALUE_KEY);
        text.push_str(value_json);
        text.push(',');
      }
      None => text.push('{'),
    }
    Head(text)
  }

  /// A head whose value's JSON, `len` bytes of ASCII, `write` puts straight
  /// into the room it is given (at least `len + 1` bytes), answering how many
  /// bytes it wrote: a large value is then copied once, where reading it into
  /// a buffer of its own first cost a 100 kB save a second copy, into memory
  /// not in the CPU's cache (a fifth of the save's time, against a JS Map).
  /// None, when it did not write `len` bytes of ASCII.
  ///
  /// # Safety
  /// `write` has initialised as many bytes as it answers.
  pub unsafe fn with_ascii_value(len: usize, write: impl FnOnce(&mut [MaybeUninit<u8>]) -> Option<usize>) -> Option<Head> {
    let mut text = Vec::with_capacity(VALUE_KEY.len() + len + 1 + TAIL_ROOM);
    text.extend_from_slice(VALUE_KEY.as_bytes());
    if write(text.spare_capacity_mut())? != len {
      return None;
    }
    // SAFETY: `write` initialised these `len` bytes.
    unsafe { text.set_len(VALUE_KEY.len() + len) };
    if !text[VALUE_KEY.len()..].is_ascii() {
      return None;
    }
    text.push(b',');
    // SAFETY: ASCII is UTF-8.
    Some(Head(unsafe { String::from_utf8_unchecked(text) }))
  }
}

/// What comes before each of the tail's three numbers.
pub const EXPIRE_MARK: &str = "\"expireTimestamp\":";
pub const CREATED_MARK: &str = ",\"createdAt\":";
pub const READ_MARK: &str = ",\"readAt\":";

/// The envelope's end, from `"expireTimestamp":` on: the part a read changes.
fn push_tail(text: &mut String, expire_timestamp: Option<f64>, created_at: Option<f64>, read_at: Option<f64>) {
  text.push_str(EXPIRE_MARK);
  push_js_number(text, expire_timestamp);
  text.push_str(CREATED_MARK);
  push_js_number(text, created_at);
  text.push_str(READ_MARK);
  push_js_number(text, read_at);
  text.push('}');
}

fn tail(expire_timestamp: Option<f64>, created_at: Option<f64>, read_at: Option<f64>) -> String {
  let mut text = String::with_capacity(80);
  push_tail(&mut text, expire_timestamp, created_at, read_at);
  text
}

/// A stored envelope, borrowing the value's JSON text from the stored string.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<'a> {
  /// None only when the key is absent: `"value":null` is a value.
  #[serde(borrow, default, deserialize_with = "present")]
  pub value: Option<&'a RawValue>,
  #[serde(default)]
  pub expire_timestamp: Option<f64>,
  #[serde(default)]
  pub created_at: Option<f64>,
  #[serde(default)]
  pub read_at: Option<f64>,
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<&'de RawValue>, D::Error> {
  <&RawValue>::deserialize(deserializer).map(Some)
}

/// How a read rewrites a stored entry.
#[derive(Debug, PartialEq)]
pub enum Rewrite {
  /// The text is in JSON.stringify's exact form: only its tail changes,
  /// from byte `at` on, to `new`; the value's bytes stay put.
  Tail { at: usize, new: String },
  /// Any other form (whitespace, key order, extra keys): the whole text is
  /// replaced by the standard form, the value's JSON kept byte for byte.
  Whole(String),
}

/// What a read does to an entry: the rewrite, what the read answers, and
/// the entry's physical lifetime afterwards.
#[derive(Debug)]
pub struct Touched {
  pub rewrite: Rewrite,
  pub loaded: Loaded,
  pub lifetime: Lifetime,
}

impl<'a> Envelope<'a> {
  pub fn parse(text: &'a str) -> Option<Self> {
    // serde would also read a struct from an array; an envelope is an object.
    if !text.trim_start().starts_with('{') {
      return None;
    }
    serde_json::from_str(text).ok()
  }

  fn value_json(&self) -> Option<&'a str> {
    self.value.map(RawValue::get)
  }

  /// Expired from the millisecond of its `expireTimestamp` on. (actionhero
  /// reads that millisecond as live, but has deleted an entry by then, when a
  /// plain read re-set its lifetime to whole seconds; its own tests count on
  /// it being gone, and here it is gone from that millisecond too.)
  pub fn is_expired(&self, now: f64) -> bool {
    self.expire_timestamp.is_some_and(|at| at <= now)
  }

  /// The entry `text` (this envelope's source) after a read: as actionhero
  /// 16 does, `readAt` becomes now and, with a refresh, an entry that
  /// expires gets the new expiry and lifetime. Without one, the entry lives
  /// until its own `expireTimestamp`, exactly (actionhero re-sets it to
  /// whole seconds rounded down, deleting an entry read in its last second).
  pub fn touched(&self, text: &str, touch: Touch) -> Touched {
    let refresh = touch.refresh.filter(|_| self.expire_timestamp.is_some());
    let expire_timestamp = refresh.map_or(self.expire_timestamp, |r| Some(r.expire_timestamp));
    let lifetime = match (refresh, self.expire_timestamp) {
      (Some(refresh), _) => refresh.lifetime,
      // An expiry past any clock's range (1e300 is valid JSON) never comes.
      (None, Some(at)) if at - touch.now <= MAX_MS => Lifetime::Until(at - touch.skew),
      (None, _) => Lifetime::Forever,
    };
    let new_tail = tail(expire_timestamp, self.created_at, Some(touch.now));
    let rewrite = match self.standard_tail_at(text) {
      Some(at) => Rewrite::Tail { at, new: new_tail },
      None => {
        let mut whole = Head::new(self.value_json()).0;
        whole.push_str(&new_tail);
        Rewrite::Whole(whole)
      }
    };
    let loaded = Loaded {
      value_json: self.value_json().map(str::to_owned),
      expire_timestamp,
      created_at: self.created_at,
      last_read_at: self.read_at,
    };
    Touched { rewrite, loaded, lifetime }
  }

  /// Where the tail starts when `text` is exactly what `encode` writes for
  /// this envelope; checked without copying the value.
  fn standard_tail_at(&self, text: &str) -> Option<usize> {
    let at = match self.value_json() {
      Some(value) => {
        let rest = text.strip_prefix("{\"value\":")?.strip_prefix(value)?.strip_prefix(',')?;
        text.len() - rest.len()
      }
      None => text.strip_prefix('{').map(|_| 1)?,
    };
    (text[at..] == tail(self.expire_timestamp, self.created_at, self.read_at)).then_some(at)
  }
}

impl Rewrite {
  /// Makes `text` (the entry read) what this rewrite says.
  pub fn apply(self, text: &mut String) {
    match self {
      Rewrite::Tail { at, new } => {
        text.truncate(at);
        text.push_str(&new);
      }
      Rewrite::Whole(whole) => *text = whole,
    }
  }
}

/// A number as JSON.stringify writes it (see [`push_js_number`]).
pub fn js_number(n: Option<f64>) -> String {
  let mut text = String::new();
  push_js_number(&mut text, n);
  text
}

/// Writes a number the way JavaScript's JSON.stringify does for the values
/// the cache writes (integers without a fraction, others in shortest form),
/// or `null`. This runs on every save and load, hence no `format!`.
pub fn push_js_number(text: &mut String, n: Option<f64>) {
  match n {
    // JSON.stringify writes NaN and ±Infinity as null too.
    None => text.push_str("null"),
    Some(n) if !n.is_finite() => text.push_str("null"),
    Some(n) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => {
      text.push_str(itoa::Buffer::new().format(n as i64));
    }
    Some(n) => text.push_str(&n.to_string()),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  const AT: f64 = 1_700_000_000_000.0;

  /// What `write` would write: `bytes`, or nothing (a failed read).
  fn writing(bytes: Option<&[u8]>) -> impl FnOnce(&mut [MaybeUninit<u8>]) -> Option<usize> + '_ {
    move |room| {
      let bytes = bytes?;
      for (slot, byte) in room.iter_mut().zip(bytes) {
        slot.write(*byte);
      }
      Some(bytes.len())
    }
  }

  #[test]
  fn a_head_takes_a_value_written_into_it_only_as_ascii_of_the_length_given() {
    let head = unsafe { Head::with_ascii_value(3, writing(Some(b"[1]"))) }.expect("ASCII of the length given");
    assert_eq!(encode(head, None, Some(1.0), None), r#"{"value":[1],"expireTimestamp":null,"createdAt":1,"readAt":null}"#);
    assert!(unsafe { Head::with_ascii_value(4, writing(Some("\"é\"".as_bytes()))) }.is_none(), "UTF-8 beyond ASCII");
    assert!(unsafe { Head::with_ascii_value(4, writing(Some(b"[1]"))) }.is_none(), "fewer bytes than the length");
    assert!(unsafe { Head::with_ascii_value(3, writing(None)) }.is_none(), "a failed write");
  }

  #[test]
  fn encodes_like_json_stringify() {
    assert_eq!(
      encode(Head::new(Some(r#"{"a":[1,2]}"#)), Some(AT + 1000.0), Some(AT), None),
      r#"{"value":{"a":[1,2]},"expireTimestamp":1700000001000,"createdAt":1700000000000,"readAt":null}"#
    );
    assert_eq!(encode(Head::new(Some("1.5")), None, Some(1.0), Some(2.5)), r#"{"value":1.5,"expireTimestamp":null,"createdAt":1,"readAt":2.5}"#);
    assert_eq!(encode(Head::new(Some("1")), Some(f64::INFINITY), Some(f64::NAN), None), r#"{"value":1,"expireTimestamp":null,"createdAt":null,"readAt":null}"#);
    // JSON.stringify({ value: undefined, … }) leaves the key out.
    assert_eq!(encode(Head::new(None), None, Some(1.0), None), r#"{"expireTimestamp":null,"createdAt":1,"readAt":null}"#);
  }

  #[test]
  fn parses_keeping_the_value_text() {
    let text = r#"{"value":{"b":[],"a":1e3},"expireTimestamp":null,"createdAt":5,"readAt":7}"#;
    let envelope = Envelope::parse(text).unwrap();
    assert_eq!(envelope.value_json(), Some(r#"{"b":[],"a":1e3}"#));
    assert_eq!(envelope.created_at, Some(5.0));
    assert_eq!(envelope.read_at, Some(7.0));
    assert!(!envelope.is_expired(1e15));
  }

  #[test]
  fn a_missing_value_reads_as_undefined_and_garbage_is_rejected() {
    let envelope = Envelope::parse(r#"{"expireTimestamp":10,"createdAt":1,"readAt":null}"#).unwrap();
    assert_eq!(envelope.value_json(), None);
    assert!(envelope.is_expired(10.0));
    assert!(!envelope.is_expired(9.0));
    assert!(Envelope::parse("not json").is_none());
    assert!(Envelope::parse("[1]").is_none());
    // Out of f64's range: not an envelope this cache can keep a clock for.
    assert!(Envelope::parse(r#"{"value":1,"expireTimestamp":1e400,"createdAt":1,"readAt":null}"#).is_none());
    let far = r#"{"value":1,"expireTimestamp":1e300,"createdAt":1,"readAt":null}"#;
    let touched = Envelope::parse(far).unwrap().touched(far, Touch { now: AT, skew: 0.0, refresh: None });
    assert_eq!(touched.lifetime, Lifetime::Forever);
    let null = Envelope::parse(r#"{"value":null,"expireTimestamp":null,"createdAt":1,"readAt":null}"#).unwrap();
    assert_eq!(null.value_json(), Some("null"));
    assert!(Envelope::parse(r#"{"value":{bad,"expireTimestamp":null,"createdAt":1,"readAt":null}"#).is_none());
  }

  #[test]
  fn a_read_of_the_standard_form_rewrites_only_the_tail() {
    let text = encode(Head::new(Some("[1,2]")), Some(AT + 5000.0), Some(AT), None);
    let touched = Envelope::parse(&text).unwrap().touched(&text, Touch { now: AT + 1000.0, skew: 0.0, refresh: None });
    let at = r#"{"value":[1,2],"#.len();
    assert_eq!(
      touched.rewrite,
      Rewrite::Tail { at, new: tail(Some(AT + 5000.0), Some(AT), Some(AT + 1000.0)) }
    );
    assert_eq!(touched.lifetime, Lifetime::Until(AT + 5000.0));
    assert_eq!(touched.loaded.last_read_at, None);
    let bare = encode(Head::new(None), None, Some(AT), Some(AT));
    let touched = Envelope::parse(&bare).unwrap().touched(&bare, Touch { now: AT, skew: 0.0, refresh: None });
    assert!(matches!(touched.rewrite, Rewrite::Tail { at: 1, .. }));
    assert_eq!(touched.lifetime, Lifetime::Forever);
    assert_eq!(touched.loaded.value_json, None);
  }

  #[test]
  fn a_read_of_another_form_keeps_the_value_bytes() {
    let text = r#"{ "readAt": null, "createdAt": 5, "value": [ 1.50, {} ], "extra": true, "expireTimestamp": null }"#;
    let refresh = Refresh { expire_timestamp: AT, lifetime: Lifetime::Secs(3) };
    let touched = Envelope::parse(text).unwrap().touched(text, Touch { now: 9.0, skew: 0.0, refresh: Some(refresh) });
    assert_eq!(touched.rewrite, Rewrite::Whole(r#"{"value":[ 1.50, {} ],"expireTimestamp":null,"createdAt":5,"readAt":9}"#.into()));
    // No expiry to refresh: the entry keeps living without one.
    assert_eq!(touched.lifetime, Lifetime::Forever);
  }
}
