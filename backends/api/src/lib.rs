//! Remote state storage for drydock: a key–value store of objects with the two conditional
//! writes that make a lock and a lost-update-free state possible. Implemented on Amazon S3 by
//! `backends/s3` and in memory here ([`MemoryStore`]) for tests of what is built on it.
//!
//! The lock and lease logic lives in the state crate (`crates/state/src/remote.rs`) on top of
//! [`ObjectStore`], so it is the same for every store and can be tested on [`MemoryStore`].
//!
//! Invariant: knows nothing of drydock's state format, of locks, or of any SDK.
//!
//! # The contract
//! - [`ObjectStore::put`] with [`Condition::IfNoneMatch`] succeeds only when no object has the
//!   key, and with [`Condition::IfMatch`] only when the object's current ETag is the one given;
//!   otherwise it fails with [`StoreError::PreconditionFailed`] and changes nothing. Of two
//!   conditional writes based on the same ETag, at most one succeeds.
//! - [`ObjectStore::delete`] with an ETag deletes only that version of the object.
//! - ETags are opaque strings, compared as given (S3's carry their quotes).

mod memory;

pub use memory::MemoryStore;

/// An object as read: its bytes, its ETag, and its version id when the bucket keeps versions
/// (so a version id says the store keeps every version: S3 bucket versioning is on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bytes: Vec<u8>,
    pub etag: String,
    pub version_id: Option<String>,
}

/// What a successful write returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub etag: String,
    pub version_id: Option<String>,
}

/// When a write may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Always (the object is replaced or created).
    None,
    /// Only if no object has the key (`If-None-Match: *`).
    IfNoneMatch,
    /// Only if the object's current ETag is this one (`If-Match`).
    IfMatch(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write's condition did not hold: someone else wrote (or deleted) the object first.
    #[error("the object changed since it was read (precondition failed)")]
    PreconditionFailed,
    /// Anything else, with a message that says what failed and, where known, what to do.
    #[error("{0}")]
    Other(String),
}

/// Objects with conditional writes. See the crate docs for the contract.
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync {
    /// `s3://bucket/key` for messages.
    fn describe(&self, key: &str) -> String;
    /// The object, or `None` when no object has the key.
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError>;
    async fn put(&self, key: &str, bytes: Vec<u8>, condition: Condition) -> Result<Written, StoreError>;
    /// Deletes the object; with `if_match`, only while its ETag is that one. Deleting a key
    /// that does not exist succeeds.
    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<(), StoreError>;
}
