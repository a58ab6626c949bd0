//! EKS: what a node's bootstrap needs to know of a cluster ([`EksCluster`], from
//! `DescribeCluster`), and the bearer token its API server takes.
//!
//! # The token
//!
//! As `aws eks get-token` (and aws-iam-authenticator) make it: `k8s-aws-v1.` followed by the
//! unpadded base64url of a presigned STS `GetCallerIdentity` GET URL
//! (`https://sts.<region>.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-…`),
//! signed with SigV4 in the query string (`X-Amz-Expires=60`) with the header
//! `x-k8s-aws-id: <cluster name>` among the signed headers, so that a token for one cluster is
//! refused by another. The API server's authenticator calls STS with it and accepts it for 15
//! minutes after it was signed; like `aws eks get-token`, a token here is said to expire after
//! 14 (or when the credentials that signed it do, if sooner). Signing is the SDK's own SigV4
//! signer (`aws-sigv4`), with credentials from the provider's own chain.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine as _;
use drydock_provider::kube::BearerToken;
use drydock_provider::{ErrorKind, ProviderError};

/// An EKS cluster as `DescribeCluster` shows it: what a node's `NodeConfig` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EksCluster {
    /// The API server's URL (`https://….eks.amazonaws.com`).
    pub endpoint: String,
    /// The cluster's certificate authority: base64 of its PEM, as EKS gives it.
    pub certificate_authority: String,
    /// The service CIDR (IPv4, or IPv6 for an IPv6 cluster), from which nodeadm infers the
    /// cluster DNS address.
    pub service_cidr: String,
    /// The Kubernetes version (`1.31`).
    pub version: String,
}

/// What every EKS token starts with.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The signed header that names the cluster a token is for.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// How long the presigned URL itself is valid (`X-Amz-Expires`), as `aws eks get-token` signs it.
pub const PRESIGNED_EXPIRES: Duration = Duration::from_secs(60);
/// How long a token is used: the authenticator accepts it for 15 minutes after signing; one
/// minute less, as `aws eks get-token` reports.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(14 * 60);

/// STS's regional endpoint host.
fn sts_host(region: &str) -> String {
    if region.starts_with("cn-") {
        format!("sts.{region}.amazonaws.com.cn")
    } else {
        format!("sts.{region}.amazonaws.com")
    }
}

/// Percent-encodes a query value: everything but the unreserved characters.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

/// The presigned STS `GetCallerIdentity` URL for `cluster`, signed at `now`.
pub fn presigned_url(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, ProviderError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        ProviderError::other(format!("EKS token for cluster {cluster}: {what}: {e}"))
    };
    if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(ProviderError::invalid_input(format!(
            "EKS token for cluster {cluster}: region `{region}` is not a region name"
        )));
    }
    let url = format!("https://{}/?Action=GetCallerIdentity&Version=2011-06-15", sts_host(region));
    let identity = Identity::from(credentials.clone());
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGNED_EXPIRES);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| fail("signing parameters", &e))?
        .into();
    let request =
        SignableRequest::new("GET", url.as_str(), [(CLUSTER_ID_HEADER, cluster)].into_iter(), SignableBody::Bytes(&[]))
            .map_err(|e| fail("the request", &e))?;
    let (instructions, _) = sign(request, &params).map_err(|e| fail("signing", &e))?.into_parts();
    let mut out = url;
    for (name, value) in instructions.params() {
        out.push('&');
        out.push_str(name);
        out.push('=');
        out.push_str(&encode(value));
    }
    Ok(out)
}

/// The token for `cluster` signed at `now`, and when it is to be renewed by (milliseconds since
/// the UNIX epoch): [`TOKEN_LIFETIME`] after `now`, or the credentials' expiry if sooner.
pub fn token(
    credentials: &Credentials,
    region: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<(String, u64), ProviderError> {
    let url = presigned_url(credentials, region, cluster, now)?;
    let token = format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url));
    let mut expires = ms(now).saturating_add(TOKEN_LIFETIME.as_millis() as u64);
    if let Some(expiry) = credentials.expiry() {
        expires = expires.min(ms(expiry));
    }
    Ok((token, expires))
}

/// Where a token source takes its region and credentials from: the provider's own clients.
#[async_trait]
pub(crate) trait Signer: Send + Sync {
    async fn region_and_credentials(&self) -> Result<(String, Credentials), ProviderError>;
}

/// An EKS cluster's bearer tokens, signed with the provider's credentials
/// ([`crate::AwsProvider::eks_token_source`]).
pub struct EksTokenSource {
    pub(crate) cluster: String,
    pub(crate) signer: Arc<dyn Signer>,
}

impl std::fmt::Debug for EksTokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksTokenSource").field("cluster", &self.cluster).finish_non_exhaustive()
    }
}

#[async_trait]
impl BearerToken for EksTokenSource {
    async fn token(&self) -> Result<(String, u64), ProviderError> {
        let (region, credentials) = self.signer.region_and_credentials().await.map_err(|e| {
            ProviderError::new(e.kind, format!("EKS token for cluster {}: {}", self.cluster, e.message))
        })?;
        token(&credentials, &region, &self.cluster, SystemTime::now())
    }
}

/// A credentials error as drydock reports it.
pub(crate) fn credentials_error(e: &dyn std::fmt::Display) -> ProviderError {
    ProviderError::new(
        ErrorKind::Auth,
        format!(
            "loading AWS credentials: {e}; set AWS_PROFILE (or `profile` in the provider \"aws\" block), \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
        ),
    )
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn query(url: &str) -> Vec<(String, String)> {
        let (_, q) = url.split_once('?').unwrap();
        q.split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn a_token_is_a_presigned_get_caller_identity_for_the_cluster() {
        let creds = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "test");
        // 2024-05-01T12:00:00Z
        let now = at(1_714_564_800);
        let (token, expires) = token(&creds, "us-east-1", "prod-eks", now).unwrap();
        assert!(token.starts_with(TOKEN_PREFIX));
        assert!(!token.contains('='), "unpadded: {token}");
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token[TOKEN_PREFIX.len()..]).unwrap();
        let url = String::from_utf8(url).unwrap();
        // Byte for byte what botocore's `SigV4QueryAuth(credentials, "sts", "us-east-1",
        // expires=60)` makes of the same request at the same time (`aws eks get-token`'s signer).
        expect!["https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20240501%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20240501T120000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id&X-Amz-Signature=06155beb08c4b2d8d74ad2a64e7579d167f07f64d72dae9004aeef21d32a49b0"]
        .assert_eq(&url);
        let q = query(&url);
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("X-Amz-Expires"), Some("60"));
        assert_eq!(get("X-Amz-SignedHeaders"), Some("host%3Bx-k8s-aws-id"));
        assert_eq!(get("X-Amz-Signature").map(str::len), Some(64));
        assert_eq!(expires, 1_714_564_800_000 + 14 * 60 * 1000);
        // Another cluster, another signature.
        let (other, _) = super::token(&creds, "us-east-1", "staging", now).unwrap();
        assert_ne!(other, token);
    }

    #[test]
    fn temporary_credentials_carry_their_session_token_and_bound_the_expiry() {
        let expiry = at(1_714_564_800 + 300);
        let creds = Credentials::new("ASIAEXAMPLE", "secret", Some("session/token+=".into()), Some(expiry), "test");
        let (token, expires) = token(&creds, "eu-west-1", "c", at(1_714_564_800)).unwrap();
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token[TOKEN_PREFIX.len()..]).unwrap();
        let url = String::from_utf8(url).unwrap();
        assert!(url.starts_with("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"));
        assert!(url.contains("&X-Amz-Security-Token=session%2Ftoken%2B%3D"), "{url}");
        assert_eq!(expires, 1_714_564_800_000 + 300_000);
    }

    #[test]
    fn china_regions_have_their_own_sts_and_nonsense_regions_are_refused() {
        assert_eq!(sts_host("cn-north-1"), "sts.cn-north-1.amazonaws.com.cn");
        let creds = Credentials::new("a", "b", None, None, "test");
        assert!(token(&creds, "", "c", at(0)).is_err());
        assert!(token(&creds, "us-east-1/../x", "c", at(0)).is_err());
    }
}
