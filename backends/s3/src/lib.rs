//! drydock's remote state storage on Amazon S3 (and anything that speaks S3: moto,
//! LocalStack, MinIO): [`S3Store`], an [`ObjectStore`] with S3's conditional writes.
//!
//! Invariant: the only crate that depends on the S3 SDK; knows nothing of drydock's state
//! format or locks; builds no client before the first call.

mod s3;

pub use drydock_backend::{Condition, Object, ObjectStore, StoreError, Written};
pub use s3::{S3Config, S3Store};
