//! The cache's methods as plain N-API functions that every cache shares,
//! each taking its cache's handle (an External) as its first argument.
//!
//! Shared, not one set per cache: a JS call site that has met two caches'
//! own functions (one in memory, one on Redis, in one process) calls a
//! function V8 cannot know ahead, and a lock+unlock on the in-memory store
//! ran 10 to 20% slower once a Redis cache had taken locks in the same
//! process. Plain functions, not a napi-rs class: a class method unwraps
//! its receiver, checks its class and type tag, and records a borrow of it
//! in a process-wide table on every call (a sixth of a lock's time on the
//! in-memory store). A shared function finds its cache with one
//! `napi_get_value_external`.

use std::ffi::c_void;
use std::ops::Deref;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use napi::bindgen_prelude::*;

use crate::envelope::{Clock, Head};

/// A method: converts its JS arguments, calls the target, converts the result.
pub type Method<T> = unsafe fn(&T, sys::napi_env, &[sys::napi_value; MAX_ARGS]) -> Result<sys::napi_value>;

/// The most arguments a method takes after the handle; missing ones read as `undefined`.
pub const MAX_ARGS: usize = 5;

/// A type whose methods the shared functions call: `METHODS[i]` is the
/// method of the function named `names[i]` (see [`functions`]).
pub trait Target: 'static {
  const METHODS: &'static [Method<Self>];
}

/// A target of any type, as a handle holds it.
trait AnyTarget {
  /// # Safety
  /// `env` and `args` are the live call's, on its thread.
  unsafe fn call(&self, method: usize, env: sys::napi_env, args: &[sys::napi_value; MAX_ARGS]) -> Result<sys::napi_value>;
}

impl<T: Target> AnyTarget for T {
  unsafe fn call(&self, method: usize, env: sys::napi_env, args: &[sys::napi_value; MAX_ARGS]) -> Result<sys::napi_value> {
    let method = T::METHODS.get(method).ok_or_else(|| Error::new(Status::InvalidArg, "no such method"))?;
    unsafe { method(self, env, args) }
  }
}

/// `target`'s handle: an External that owns it, dropped when the handle is collected.
pub fn handle<T: Target>(raw_env: sys::napi_env, target: T) -> Result<sys::napi_value> {
  let target: Box<Box<dyn AnyTarget>> = Box::new(Box::new(target));
  let target = Box::into_raw(target);
  let mut external = ptr::null_mut();
  let created = unsafe { sys::napi_create_external(raw_env, target.cast(), Some(finalize), ptr::null_mut(), &mut external) };
  if created != sys::Status::napi_ok {
    drop(unsafe { Box::from_raw(target) });
    check_status!(created, "cannot create a cache handle")?;
  }
  Ok(external)
}

/// A JS object of functions named `names`, the one named `names[i]`
/// calling method `i` of the target whose handle it is given first.
pub fn functions<'env>(raw_env: sys::napi_env, names: &[&str]) -> Result<Object<'env>> {
  let mut object = ptr::null_mut();
  check_status!(unsafe { sys::napi_create_object(raw_env, &mut object) })?;
  for (method, name) in names.iter().enumerate() {
    let mut function = ptr::null_mut();
    // The method's index is the function's data: no allocation to free.
    check_status!(
      unsafe { sys::napi_create_function(raw_env, name.as_ptr().cast(), name.len() as isize, Some(call), method as *mut c_void, &mut function) },
      "cannot create the function {}",
      name
    )?;
    check_status!(unsafe { set_property(raw_env, object, name, function) })?;
  }
  Ok(Object::from_raw(raw_env, object))
}

/// `object[name] = value`; `name` need not be NUL-terminated.
unsafe fn set_property(env: sys::napi_env, object: sys::napi_value, name: &str, value: sys::napi_value) -> sys::napi_status {
  let mut key = ptr::null_mut();
  let status = unsafe { sys::napi_create_string_utf8(env, name.as_ptr().cast(), name.len() as isize, &mut key) };
  if status != sys::Status::napi_ok {
    return status;
  }
  unsafe { sys::napi_set_property(env, object, key, value) }
}

/// How a method's argument is read from JavaScript: as napi-rs reads it,
/// but for strings.
pub trait Arg: Sized {
  /// # Safety
  /// `value` is a live value of `env`, on its thread.
  unsafe fn from_js(env: sys::napi_env, value: sys::napi_value) -> Result<Self>;
}

macro_rules! arg_as_napi_reads_it {
  ($($ty:ty),*) => {$(
    impl Arg for $ty {
      unsafe fn from_js(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        unsafe { <$ty as FromNapiValue>::from_napi_value(env, value) }
      }
    }
  )*};
}

arg_as_napi_reads_it!(u32, f64, crate::CallerOptions);

/// A key as a method reads it: a short one (most of them) in one N-API
/// call into a buffer it keeps on the stack, a longer one as any string is
/// read. Neither asking V8 for the length first nor copying the key to the
/// heap: in-memory lock+unlock ran 3 to 5% faster without the first, and 5
/// to 12% faster again without the second (the Map as the yardstick, both
/// versions in one process).
pub enum Key {
  Short { bytes: [u8; SHORT_STRING_BYTES], len: usize },
  Long(String),
}

impl Deref for Key {
  type Target = str;

  fn deref(&self) -> &str {
    match self {
      // SAFETY: N-API wrote `len` bytes of UTF-8 there (lone surrogates replaced).
      Key::Short { bytes, len } => unsafe { std::str::from_utf8_unchecked(&bytes[..*len]) },
      Key::Long(key) => key,
    }
  }
}

impl Arg for Key {
  unsafe fn from_js(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
    let mut bytes = [0u8; SHORT_STRING_BYTES];
    let mut written = 0;
    check_status!(
      unsafe { sys::napi_get_value_string_utf8(env, value, bytes.as_mut_ptr().cast(), bytes.len(), &mut written) },
      "expected a string"
    )?;
    // V8 writes whole characters (up to 4 bytes) and a NUL: with more than
    // that left over, nothing was cut off.
    if written + 5 <= bytes.len() {
      return Ok(Key::Short { bytes, len: written });
    }
    Ok(Key::Long(unsafe { utf8_of(env, value, utf16_len(env, value)?) }?))
  }
}

/// Any other string (a file name, a list item's JSON): as a key is read,
/// then owned. A long one is read in one pass into a buffer sized for the
/// worst case (3 UTF-8 bytes per UTF-16 unit, which V8 reports without
/// walking the string), where napi-rs walks the string once to measure its
/// UTF-8 length and again to copy it: that first walk was 4% of a save to
/// the in-memory store at 100 B, and 6% at 10 kB. The buffer's unused part
/// is never touched (no page is faulted in for it), and every string read
/// here is short-lived.
impl Arg for String {
  unsafe fn from_js(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
    Ok(match unsafe { Key::from_js(env, value) }? {
      Key::Long(string) => string,
      short => String::from(&*short),
    })
  }
}

/// Room on the stack for a short string's UTF-8 and its NUL.
const SHORT_STRING_BYTES: usize = 128;

/// The string `value`, `units` UTF-16 units long, as UTF-8 (see `impl Arg for String`).
unsafe fn utf8_of(env: sys::napi_env, value: sys::napi_value, units: usize) -> Result<String> {
  let capacity = units * 3 + 1; // and the NUL N-API writes
  let mut bytes = Vec::<u8>::with_capacity(capacity);
  let mut written = 0;
  check_status!(
    unsafe { sys::napi_get_value_string_utf8(env, value, bytes.as_mut_ptr().cast(), capacity, &mut written) },
    "expected a string"
  )?;
  // SAFETY: N-API wrote `written` bytes of UTF-8 (lone surrogates replaced).
  unsafe {
    bytes.set_len(written);
    Ok(String::from_utf8_unchecked(bytes))
  }
}

/// A value's JSON (JSON.stringify's output). A long one is read straight
/// into the envelope's head, as UTF-8 into exactly one byte per UTF-16 unit:
/// JSON is mostly ASCII, and that fits only when every unit is. Other text,
/// and short values, are read into a buffer sized for the worst case, then
/// copied into the head. (Not as Latin-1, which V8 would write faster: it
/// truncates other characters, `Ł` to `A`.)
impl Arg for Head {
  unsafe fn from_js(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
    let units = unsafe { utf16_len(env, value) }?;
    if units >= TIGHT_READ_FROM {
      let ascii = unsafe {
        Head::with_ascii_value(units, |room| {
          let mut written = 0;
          let status = sys::napi_get_value_string_utf8(env, value, room.as_mut_ptr().cast(), units + 1, &mut written);
          (status == sys::Status::napi_ok).then_some(written)
        })
      };
      if let Some(head) = ascii {
        return Ok(head);
      }
    }
    Ok(Head::new(Some(&unsafe { utf8_of(env, value, units) }?)))
  }
}

/// Below this many units, V8's UTF-8 writer, which checks the room left as
/// it goes when its buffer is tight, costs more than a second copy (the
/// native part of a save to the in-memory store, 100 B: 0.99 µs read tight
/// against 0.78 µs; 10 kB: 2.1 against 4.5 µs; 100 kB: 15 against 63 µs).
const TIGHT_READ_FROM: usize = 2048;

/// The string's length in UTF-16 units, which V8 knows without walking it.
unsafe fn utf16_len(env: sys::napi_env, value: sys::napi_value) -> Result<usize> {
  let mut units = 0;
  check_status!(
    unsafe { sys::napi_get_value_string_utf16(env, value, ptr::null_mut(), 0, &mut units) },
    "expected a string"
  )?;
  Ok(units)
}

/// The caller's `Date.now()`, which index.js passes only where `Date` is
/// faked (else `undefined`: the system clock).
impl Arg for Clock {
  unsafe fn from_js(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
    unsafe { Option::<f64>::from_js(env, value) }.map(Clock::of_caller)
  }
}

/// `undefined` or `null` is None.
impl<T: Arg> Arg for Option<T> {
  unsafe fn from_js(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
    let mut kind = 0;
    check_status!(unsafe { sys::napi_typeof(env, value, &mut kind) })?;
    match kind {
      sys::ValueType::napi_undefined | sys::ValueType::napi_null => Ok(None),
      _ => unsafe { T::from_js(env, value) }.map(Some),
    }
  }
}

unsafe extern "C" fn call(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  // A panic must not unwind into Node, which would abort the process.
  let outcome = catch_unwind(AssertUnwindSafe(|| {
    let mut argc = MAX_ARGS + 1;
    let mut args = [ptr::null_mut(); MAX_ARGS + 1];
    let mut method = ptr::null_mut();
    check_status!(unsafe { sys::napi_get_cb_info(env, info, &mut argc, args.as_mut_ptr(), ptr::null_mut(), &mut method) })?;
    // Fewer arguments than that: N-API fills the rest with undefined.
    let mut target = ptr::null_mut();
    check_status!(unsafe { sys::napi_get_value_external(env, args[0], &mut target) }, "expected a cache handle")?;
    // SAFETY: the only Externals passed here are `handle`'s, alive while the
    // caller holds one: index.js is these functions' only caller, and the
    // package's exports keep lib/native.js from any other.
    let target = unsafe { &*target.cast::<Box<dyn AnyTarget>>() };
    let args = args[1..].try_into().expect("MAX_ARGS after the handle");
    unsafe { target.call(method as usize, env, args) }
  }))
  .unwrap_or_else(|panic| Err(napi::bindgen_prelude::panic_to_error(panic)));
  match outcome {
    Ok(value) => value,
    Err(error) => {
      unsafe { JsError::from(error).throw_into(env) };
      ptr::null_mut()
    }
  }
}

unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
  drop(unsafe { Box::from_raw(data.cast::<Box<dyn AnyTarget>>()) });
}
