//! The conformance cases: one public async function per behaviour, each taking the
//! repositories of one fresh backend instance (`&Repos`; the persistence cases take the
//! [`Backend`](crate::Backend)) and panicking with a message naming what broke.
//!
//! Cases only assume what the `nacos-core` trait docs promise. Timestamps are compared with
//! the test's wall clock only where the contract is about time (`changed_since`), with margins.

/// Assert that a result is the given error kind, with context.
macro_rules! assert_err {
    ($result:expr, $pattern:pat, $what:expr $(,)?) => {
        match $result {
            Err($pattern) => {}
            other => panic!(
                "{}: expected {}, got {:?}",
                $what,
                stringify!($pattern),
                other
            ),
        }
    };
}

pub mod configs;
pub mod fixtures;
pub mod gray;
pub mod harness;
pub mod history;
pub mod namespaces;
pub mod persistence;
pub mod services;
pub mod users;
