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

/// A method: converts its JS arguments, calls the cache, converts the result.
pub type Method<C> = unsafe fn(&C, sys::napi_env, &[sys::napi_value; MAX_ARGS]) -> Result<sys::napi_value>;

/// The most arguments a method takes; missing ones read as `undefined`.
pub const MAX_ARGS: usize = 4;

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
