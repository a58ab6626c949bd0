//! kube's errors as [`ProviderError`]s: a kind the executor acts on, and a message that says what
//! was being done, to what, on which server, and what the server or the connection said. No
//! message carries a credential: kube's own renderings of exec-plugin failures (which print the
//! plugin's environment and output) and of YAML errors (which quote the file) are replaced, and
//! every message is scrubbed of the secrets the client knows.

use std::error::Error as StdError;

use drydock_provider::{ErrorKind, ProviderError};
use kube::client::AuthError;
use kube::config::KubeconfigError;
use kube::core::Status;

/// What a message says about the server, and what it must never show.
// No `Debug`: it holds secrets.
#[derive(Clone, Default)]
pub(crate) struct Target {
    /// `describe()`: `https://host:6443 (context prod)`.
    pub describe: String,
    /// The credentials of the configuration (bearer token, password, key), scrubbed from messages.
    pub secrets: Vec<String>,
    /// The exec credential plugin's command and install hint, if the user has one.
    pub plugin: Option<(String, Option<String>)>,
}

impl Target {
    /// `action` failed with `err`: "evicting pod default/web-1 on https://… (context prod): …".
    pub(crate) fn fail(&self, action: &str, err: kube::Error) -> ProviderError {
        let (kind, detail) = self.explain(&err);
        ProviderError::new(kind, self.scrub(&format!("{action} on {}: {detail}", self.describe)))
    }

    /// Replaces every known secret in a message.
    pub(crate) fn scrub(&self, message: &str) -> String {
        let mut message = message.to_string();
        // Short strings would mangle ordinary words; real credentials are long.
        for secret in self.secrets.iter().filter(|s| s.len() >= 6) {
            message = message.replace(secret.as_str(), "[redacted]");
        }
        message
    }

    /// The kind and the detail of a kube error.
    pub(crate) fn explain(&self, err: &kube::Error) -> (ErrorKind, String) {
        match err {
            kube::Error::Api(status) => (kind_of_status(status), status_detail(status)),
            kube::Error::HyperError(e) => (ErrorKind::Unavailable, chain(e)),
            // The bearer token's source failed: its own kind (no credentials is Auth) and words.
            kube::Error::Service(e) => match e.downcast_ref::<crate::bearer::TokenError>() {
                Some(t) => (t.0.kind, t.to_string()),
                None => (ErrorKind::Unavailable, chain(e.as_ref())),
            },
            kube::Error::Auth(e) => (ErrorKind::Auth, self.auth_detail(e)),
            kube::Error::InferKubeconfig(e) => kubeconfig_detail(e),
            kube::Error::ProxyProtocolDisabled { proxy_url, protocol_feature } => (
                ErrorKind::InvalidInput,
                format!(
                    "the proxy {} (from the kubeconfig or HTTPS_PROXY) needs kube's `{}` feature, which drydock \
                     is built without; unset HTTPS_PROXY or remove the cluster's proxy-url",
                    // Host and port only: the URL's user information may hold a password.
                    host_port(proxy_url.host(), proxy_url.port_u16()),
                    protocol_feature.trim_start_matches("kube/")
                ),
            ),
            kube::Error::ProxyProtocolUnsupported { proxy_url } => (
                ErrorKind::InvalidInput,
                format!("the proxy {} uses an unsupported protocol", host_port(proxy_url.host(), proxy_url.port_u16())),
            ),
            kube::Error::SerdeError(e) => (ErrorKind::Other, format!("unexpected answer from the server: {e}")),
            kube::Error::BuildRequest(e) => (ErrorKind::InvalidInput, chain(e)),
            kube::Error::RustlsTls(e) => (ErrorKind::InvalidInput, format!("TLS configuration: {}", chain(e))),
            kube::Error::TlsRequired => (ErrorKind::InvalidInput, "TLS required, but no TLS stack".to_string()),
            other => (ErrorKind::Other, chain(other)),
        }
    }

    fn auth_detail(&self, err: &AuthError) -> String {
        let plugin = match &self.plugin {
            Some((command, _)) => format!("the exec credential plugin {command}"),
            None => "the exec credential plugin".to_string(),
        };
        match err {
            // kube renders the command with its environment, and the plugin's whole output.
            AuthError::AuthExecRun { out, .. } => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                match stderr.lines().map(str::trim).rfind(|l| !l.is_empty()) {
                    Some(line) => format!("{plugin} failed ({}): {}", out.status, truncate(line, 300)),
                    None => format!("{plugin} failed ({})", out.status),
                }
            }
            AuthError::AuthExecStart(e) => {
                let hint = match &self.plugin {
                    Some((_, Some(hint))) => format!(" ({})", hint.trim()),
                    _ => String::new(),
                };
                format!("cannot run {plugin}: {e}{hint}")
            }
            // kube's parse error quotes the output, which holds the credential.
            AuthError::AuthExecParse(_) => format!("{plugin} printed something that is not an ExecCredential"),
            AuthError::ExecPluginFailed => format!("{plugin} printed an ExecCredential without a status"),
            AuthError::MalformedTokenExpirationDate(_) => {
                format!("{plugin} printed an ExecCredential whose expirationTimestamp is not an RFC 3339 time")
            }
            other => chain(other),
        }
    }
}

/// The HTTP status of an API error: the Status's code, else the one its reason implies (a body
/// without `code`), else 0.
pub(crate) fn status_code(status: &Status) -> u16 {
    if status.code != 0 {
        return status.code;
    }
    match status.reason.as_str() {
        "BadRequest" => 400,
        "Unauthorized" => 401,
        "Forbidden" => 403,
        "NotFound" => 404,
        "MethodNotAllowed" => 405,
        "NotAcceptable" => 406,
        "AlreadyExists" | "Conflict" => 409,
        "Gone" | "Expired" => 410,
        "RequestEntityTooLarge" => 413,
        "UnsupportedMediaType" => 415,
        "Invalid" => 422,
        "TooManyRequests" => 429,
        "InternalError" | "ServerTimeout" => 500,
        "ServiceUnavailable" => 503,
        "Timeout" => 504,
        _ => 0,
    }
}

pub(crate) fn kind_of_status(status: &Status) -> ErrorKind {
    match status_code(status) {
        401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        409 => ErrorKind::AlreadyExists,
        400 | 422 => ErrorKind::InvalidInput,
        429 => ErrorKind::Throttled,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    }
}

/// The Status's message and every cause's message that it does not already contain:
/// "Cannot evict pod as it would violate the pod's disruption budget: The disruption budget web
/// needs 5 healthy pods and has 5 currently".
pub(crate) fn status_text(status: &Status) -> String {
    let message = status.message.trim().trim_end_matches('.');
    let causes: Vec<&str> = status
        .details
        .iter()
        .flat_map(|d| &d.causes)
        .map(|c| c.message.trim().trim_end_matches('.'))
        .filter(|c| !c.is_empty() && !message.contains(c))
        .collect();
    match (message.is_empty(), causes.is_empty()) {
        (_, true) => message.to_string(),
        (true, false) => causes.join("; "),
        (false, false) => format!("{message}: {}", causes.join("; ")),
    }
}

/// The reason kube gives the answers whose body is no `Status` (a proxy's HTML page, plain text).
const NOT_A_STATUS: &str = "Failed to parse error data";

/// "pods \"web-1\" is forbidden: … (403 Forbidden)".
fn status_detail(status: &Status) -> String {
    let code = match status_code(status) {
        0 => String::new(),
        code => code.to_string(),
    };
    let (text, reason) = if status.reason == NOT_A_STATUS {
        // The whole body, which may be a page of HTML: one line, and not too long of it.
        (truncate(&status.message.split_whitespace().collect::<Vec<_>>().join(" "), 200), "")
    } else {
        (status_text(status), status.reason.as_str())
    };
    let what = [code.as_str(), reason].iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>();
    match (text.is_empty(), what.is_empty()) {
        (true, true) => "the server refused without saying why".to_string(),
        (true, false) => format!("the server answered {}", what.join(" ")),
        (false, true) => text,
        (false, false) => format!("{text} ({})", what.join(" ")),
    }
}

/// Problems with a kubeconfig, without quoting it.
fn kubeconfig_detail(err: &KubeconfigError) -> (ErrorKind, String) {
    match err {
        KubeconfigError::ReadConfig(e, path) => {
            let kind =
                if e.kind() == std::io::ErrorKind::NotFound { ErrorKind::NotFound } else { ErrorKind::InvalidInput };
            (kind, format!("cannot read {}: {e}", path.display()))
        }
        KubeconfigError::Parse(e) => {
            // Without the snippet (it shows the file's lines), on one line, quoting nothing long.
            let message = e.without_snippet().to_string();
            let first = message.lines().next().unwrap_or_default();
            (ErrorKind::InvalidInput, format!("bad YAML: {}", elide_long_quotes(first)))
        }
        KubeconfigError::CurrentContextNotSet => {
            (ErrorKind::InvalidInput, "no current-context, and no context named".to_string())
        }
        KubeconfigError::LoadContext(name) => (ErrorKind::InvalidInput, format!("no context {name:?}")),
        KubeconfigError::LoadClusterOfContext(name) => {
            (ErrorKind::InvalidInput, format!("the context names the cluster {name:?}, which is not in the file"))
        }
        KubeconfigError::MissingClusterUrl => {
            (ErrorKind::InvalidInput, "the context's cluster has no server URL".to_string())
        }
        other => (ErrorKind::InvalidInput, chain(other)),
    }
}

/// An error and its sources, "a: b: c", without repeating a source its parent already quotes.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

fn host_port(host: Option<&str>, port: Option<u16>) -> String {
    match (host, port) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        (None, _) => "(no host)".to_string(),
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Replaces quoted strings longer than 32 characters by "…": a YAML error may quote a value,
/// and the values of a kubeconfig that long are credentials and certificates.
fn elide_long_quotes(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = rest[open..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        match after.find(quote) {
            Some(close) => {
                let inner = &after[..close];
                out.push_str(if inner.chars().count() > 32 { "…" } else { inner });
                out.push(quote);
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(if after.chars().count() > 32 { "…" } else { after });
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::response::{StatusCause, StatusDetails};

    #[test]
    fn long_quotes_are_elided() {
        assert_eq!(
            elide_long_quotes(r#"unknown variant "Nevr", expected one of"#),
            r#"unknown variant "Nevr", expected one of"#
        );
        let long = format!(r#"invalid type: string "{}", expected a map"#, "x".repeat(40));
        assert_eq!(elide_long_quotes(&long), r#"invalid type: string "…", expected a map"#);
    }

    #[test]
    fn a_status_without_code_is_known_by_its_reason() {
        let status = Status::failure("pods \"a\" not found", "NotFound");
        assert_eq!(kind_of_status(&status), ErrorKind::NotFound);
        assert_eq!(kind_of_status(&Status::failure("", "Whatever")), ErrorKind::Other);
        assert_eq!(kind_of_status(&Status::failure("", "").with_code(503)), ErrorKind::Unavailable);
    }

    #[test]
    fn causes_follow_the_message() {
        let details = StatusDetails {
            name: String::new(),
            group: String::new(),
            kind: String::new(),
            uid: String::new(),
            causes: vec![StatusCause {
                reason: "DisruptionBudget".into(),
                message: "The disruption budget web needs 5 healthy pods and has 5 currently".into(),
                field: String::new(),
            }],
            retry_after_seconds: 0,
        };
        let status =
            Status::failure("Cannot evict pod as it would violate the pod's disruption budget.", "TooManyRequests")
                .with_details(details);
        assert_eq!(
            status_text(&status),
            "Cannot evict pod as it would violate the pod's disruption budget: \
             The disruption budget web needs 5 healthy pods and has 5 currently"
        );
    }
}
