//! Bearer tokens that expire, on every request: a tower layer over kube's service stack that
//! asks a [`BearerToken`] source for a token, puts `Authorization: Bearer …` on each request,
//! and asks again once the token has less than [`RENEW_BEFORE`] left, so that a client used for
//! hours (a rollout) never sends an expired token.
//!
//! The token is fetched in `poll_ready`, which kube's buffer calls before each request, one
//! request at a time: a single fetch is in flight, and requests wait for it. A fetch that fails
//! while the current token is still valid keeps the current one (the next request tries
//! again); without a valid token the request fails with the source's error (kind and message),
//! and the next one tries again — the client is never poisoned by a failed fetch.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drydock_provider::kube::BearerToken;
use drydock_provider::ProviderError;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Request};
use tower::{BoxError, Layer, Service};

/// A token with less than this left is renewed before the next request.
pub const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// A failure to get a token, as the request's error: [`crate::errors`] reports its kind and
/// message as they are.
#[derive(Debug)]
pub(crate) struct TokenError(pub ProviderError);

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "getting a bearer token: {}", self.0.message)
    }
}

impl std::error::Error for TokenError {}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)).unwrap_or(0)
}

type Fetch = Pin<Box<dyn Future<Output = Result<(String, u64), ProviderError>> + Send>>;

/// The layer: one [`BearerService`] per client.
#[derive(Clone)]
pub(crate) struct BearerLayer {
    pub source: Arc<dyn BearerToken>,
}

impl<S> Layer<S> for BearerLayer {
    type Service = BearerService<S>;

    fn layer(&self, inner: S) -> BearerService<S> {
        BearerService { inner, source: self.source.clone(), current: None, fetching: None, failed: None }
    }
}

pub(crate) struct BearerService<S> {
    inner: S,
    source: Arc<dyn BearerToken>,
    /// The `Authorization` value and when its token expires (ms since the epoch).
    current: Option<(HeaderValue, u64)>,
    fetching: Option<Fetch>,
    /// A fetch failed without a valid token to fall back on: the next request gets this.
    failed: Option<ProviderError>,
}

impl<S> BearerService<S> {
    /// Whether the current token may be sent at `now` without renewing it first.
    fn fresh(&self, now: u64) -> bool {
        self.current.as_ref().is_some_and(|(_, expires)| *expires > now.saturating_add(RENEW_BEFORE.as_millis() as u64))
    }

    /// Drives the fetch of a new token; `Ready` once there is a token to send (or an error).
    fn poll_token(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.failed.is_some() || self.fresh(now_ms()) {
            return Poll::Ready(());
        }
        let source = self.source.clone();
        let fetch = self.fetching.get_or_insert_with(|| Box::pin(async move { source.token().await }));
        let result = match fetch.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result,
        };
        self.fetching = None;
        let header = result.and_then(|(token, expires)| {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ProviderError::invalid_input("the token source gave a token that is not a valid HTTP header value")
            })?;
            value.set_sensitive(true);
            Ok((value, expires))
        });
        match header {
            Ok(header) => self.current = Some(header),
            // The current token is still good: keep sending it, and try again next time.
            Err(_) if self.current.as_ref().is_some_and(|(_, expires)| *expires > now_ms()) => {}
            Err(e) => {
                self.current = None;
                self.failed = Some(e);
            }
        }
        Poll::Ready(())
    }
}

impl<S, B> Service<Request<B>> for BearerService<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.poll_token(cx).is_pending() {
            return Poll::Pending;
        }
        if self.failed.is_some() {
            // The request will not reach the inner service.
            return Poll::Ready(Ok(()));
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(e) = self.failed.take() {
            return Box::pin(async move { Err(Box::new(TokenError(e)) as BoxError) });
        }
        if let Some((header, _)) = &self.current {
            request.headers_mut().insert(AUTHORIZATION, header.clone());
        }
        let response = self.inner.call(request);
        Box::pin(async move { response.await.map_err(Into::into) })
    }
}
