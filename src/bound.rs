//! The cache's methods as plain N-API functions, each created with the
//! native cache as its `data`. A napi-rs class method unwraps its receiver,
//! checks its class and type tag, and records a borrow of it in a
//! process-wide table on every call: a sixth of a lock's time on the
//! in-memory store, where lock+unlock ran 1.7 times as fast without it. A
//! bound function finds its cache with the one `napi_get_cb_info` that
//! reads its arguments.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::*;

use crate::envelope::{Clock, Head};

/// A method: converts its JS arguments, calls the cache, converts the result.
pub type Method<C> = unsafe fn(&C, sys::napi_env, &[sys::napi_value; MAX_ARGS]) -> Result<sys::napi_value>;

/// The most arguments a method takes; missing ones read as `undefined`.
pub const MAX_ARGS: usize = 5;

struct Bound<C> {
  target: Rc<C>,
  method: Method<C>,
}

/// A JS object holding `methods` (name, method), each bound to `target`.
/// The functions share it; it is dropped when the last one is collected.
pub fn object<'env, C: 'static>(raw_env: sys::napi_env, target: C, methods: &[(&str, Method<C>)]) -> Result<Object<'env>> {
  let target = Rc::new(target);
  let mut object = ptr::null_mut();
  check_status!(unsafe { sys::napi_create_object(raw_env, &mut object) })?;
  for &(name, method) in methods {
    let bound = Box::into_raw(Box::new(Bound { target: target.clone(), method }));
    let mut function = ptr::null_mut();
    let created = unsafe {
      sys::napi_create_function(raw_env, name.as_ptr().cast(), name.len() as isize, Some(call::<C>), bound.cast(), &mut function)
    };
    if created != sys::Status::napi_ok {
      drop(unsafe { Box::from_raw(bound) });
      check_status!(created, "cannot create the function {}", name)?;
    }
    check_status!(unsafe { sys::napi_add_finalizer(raw_env, function, bound.cast(), Some(finalize::<C>), ptr::null_mut(), ptr::null_mut()) })?;
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

/// In one pass into a buffer sized for the worst case (3 UTF-8 bytes per
/// UTF-16 unit, which V8 reports without walking the string), where napi-rs
/// walks the string once to measure its UTF-8 length and again to copy it:
/// that first walk was 4% of a save to the in-memory store at 100 B, and 6%
/// at 10 kB. The buffer's unused part is never touched (no page is faulted
/// in for it), and every string read here is short-lived: the cache copies
/// it into the text it keeps.
impl Arg for String {
  unsafe fn from_js(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
    unsafe { utf8_of(env, value, utf16_len(env, value)?) }
  }
}

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

unsafe extern "C" fn call<C>(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
  // A panic must not unwind into Node, which would abort the process.
  let outcome = catch_unwind(AssertUnwindSafe(|| {
    let mut argc = MAX_ARGS;
    let mut args = [ptr::null_mut(); MAX_ARGS];
    let mut data = ptr::null_mut();
    check_status!(unsafe { sys::napi_get_cb_info(env, info, &mut argc, args.as_mut_ptr(), ptr::null_mut(), &mut data) })?;
    // Fewer arguments than MAX_ARGS: N-API fills the rest with undefined.
    let bound = unsafe { &*data.cast::<Bound<C>>() };
    unsafe { (bound.method)(&bound.target, env, &args) }
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

unsafe extern "C" fn finalize<C>(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
  drop(unsafe { Box::from_raw(data.cast::<Bound<C>>()) });
}
