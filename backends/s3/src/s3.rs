//! [`ObjectStore`] on Amazon S3: `GetObject`, `PutObject` with `If-None-Match: *` or
//! `If-Match`, `DeleteObject` with `If-Match`, `GetBucketVersioning`.
//!
//! Credentials and region come from the standard AWS chain; `region`, `profile` and
//! `endpoint` override it, and `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) points the calls
//! elsewhere. With an endpoint set, requests use path-style addressing (`http://host/bucket/key`),
//! which moto, LocalStack and MinIO expect. The client is built on the first call.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;

use crate::{Condition, Object, ObjectStore, StoreError, Written};

/// Where the bucket is and how to reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint: Option<String>,
}

pub struct S3Store {
    config: S3Config,
    client: tokio::sync::OnceCell<aws_sdk_s3::Client>,
}

impl S3Store {
    pub fn new(config: S3Config) -> S3Store {
        S3Store { config, client: tokio::sync::OnceCell::new() }
    }

    async fn client(&self) -> &aws_sdk_s3::Client {
        self.client
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(region) = &self.config.region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                if let Some(profile) = &self.config.profile {
                    loader = loader.profile_name(profile);
                }
                if let Some(endpoint) = &self.config.endpoint {
                    loader = loader.endpoint_url(endpoint);
                }
                let shared = loader.load().await;
                let custom_endpoint = self.config.endpoint.is_some()
                    || std::env::var_os("AWS_ENDPOINT_URL").is_some()
                    || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
                let conf = aws_sdk_s3::config::Builder::from(&shared).force_path_style(custom_endpoint).build();
                aws_sdk_s3::Client::from_conf(conf)
            })
            .await
    }

    /// An SDK error as a message that names the action and the object, and says what to do
    /// for the usual causes.
    fn error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        action: &str,
        key: &str,
        e: SdkError<E, HttpResponse>,
    ) -> StoreError {
        let code = e.code().map(str::to_string);
        if code.as_deref() == Some("PreconditionFailed")
            // S3 answers 409 to a conditional write that raced another one on the same key.
            || code.as_deref() == Some("ConditionalRequestConflict")
            || e.raw_response().is_some_and(|r| r.status().as_u16() == 412)
        {
            return StoreError::PreconditionFailed;
        }
        let what = self.describe(key);
        let hint = match code.as_deref() {
            Some("NoSuchBucket") => {
                format!("the bucket `{}` does not exist; create it (with versioning enabled) first", self.config.bucket)
            }
            Some("AccessDenied") | Some("Forbidden") => format!(
                "access denied: the credentials in use need s3:GetObject, s3:PutObject and s3:DeleteObject on {what} and {what}.lock"
            ),
            Some("InvalidAccessKeyId") | Some("SignatureDoesNotMatch") | Some("ExpiredToken") => {
                "the AWS credentials were refused; check AWS_PROFILE or the credentials in the environment".to_string()
            }
            _ => {
                let text = DisplayErrorContext(&e).to_string();
                if text.contains("credentials") {
                    "no AWS credentials were found: set AWS_PROFILE (or `profile` in the backend block) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".to_string()
                } else {
                    text
                }
            }
        };
        StoreError::Other(format!("S3 {action} of {what} failed: {hint}"))
    }
}

#[async_trait::async_trait]
impl ObjectStore for S3Store {
    fn describe(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.config.bucket)
    }

    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let c = self.client().await;
        let out = match c.get_object().bucket(&self.config.bucket).key(key).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(self.error("GetObject", key, e)),
        };
        // A state, its journal records and its lock are small; an object over the local state
        // file's limit is refused before its body is read, so memory stays bounded.
        const MAX_OBJECT_BYTES: i64 = 512 << 20;
        if let Some(size) = out.content_length().filter(|n| *n > MAX_OBJECT_BYTES) {
            return Err(StoreError::Other(format!(
                "S3 GetObject of {}: the object has {size} bytes, more than the limit of {} MiB for a state",
                self.describe(key),
                MAX_OBJECT_BYTES >> 20
            )));
        }
        let etag = out.e_tag().unwrap_or_default().to_string();
        let version_id = out.version_id().map(str::to_string);
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Other(format!("S3 GetObject of {}: reading the body: {e}", self.describe(key))))?
            .into_bytes()
            .to_vec();
        Ok(Some(Object { bytes, etag, version_id }))
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, condition: Condition) -> Result<Written, StoreError> {
        let c = self.client().await;
        let mut req = c
            .put_object()
            .bucket(&self.config.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(bytes));
        req = match condition {
            Condition::None => req,
            Condition::IfNoneMatch => req.if_none_match("*"),
            Condition::IfMatch(etag) => req.if_match(etag),
        };
        let out = req.send().await.map_err(|e| self.error("PutObject", key, e))?;
        Ok(Written {
            etag: out.e_tag().unwrap_or_default().to_string(),
            version_id: out.version_id().map(str::to_string),
        })
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> Result<(), StoreError> {
        let c = self.client().await;
        let mut req = c.delete_object().bucket(&self.config.bucket).key(key);
        if let Some(etag) = if_match {
            req = req.if_match(etag);
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some() && e.code() == Some("NoSuchKey") => Ok(()),
            Err(e) => Err(self.error("DeleteObject", key, e)),
        }
    }
}
