//! Panics are bugs, and a bug in handling one file must not stop the rest: each unit of work
//! (a message, a sweep, a backfill's file, a verified file) runs under [`caught`], and a panic
//! becomes an error its caller reports, counts and survives. The hook installed by
//! [`log_panics`] writes the panic itself (where, and what) as a structured error line,
//! instead of the bare text Rust prints by default.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt as _;

/// A panic caught in a unit of work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trailvault panicked (a bug; please report it with this line): {0}")]
pub struct Panicked(pub String);

/// Runs `work`, turning a panic inside it into [`Panicked`].
pub async fn caught<T>(work: impl Future<Output = T>) -> Result<T, Panicked> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|payload| Panicked(message(payload.as_ref())))
}

/// Runs `work` on this thread, turning a panic inside it into [`Panicked`].
pub fn caught_sync<T>(work: impl FnOnce() -> T) -> Result<T, Panicked> {
    std::panic::catch_unwind(AssertUnwindSafe(work)).map_err(|p| Panicked(message(p.as_ref())))
}

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Logs every panic as an error event with its location, through `tracing`.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(
            panic = %message(info.payload()),
            location,
            "panicked (a bug); the unit of work is reported as failed and the rest goes on"
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_an_error_with_its_message() {
        let none: Option<u8> = std::hint::black_box(None);
        let r = caught(async { none.expect("the thing was there") }).await;
        assert_eq!(r, Err(Panicked("the thing was there".to_owned())));
        assert_eq!(caught(async { 7 }).await, Ok(7));
        let r = caught_sync(|| -> u8 { panic!("{} went wrong", "it") });
        assert_eq!(r, Err(Panicked("it went wrong".to_owned())));
    }
}
