//! AWS failures as drydock sees them: every SDK error becomes an [`AwsError`] that keeps the
//! action and the AWS error code (so callers can tell "not found" from "denied"), and then a
//! [`ProviderError`] whose kind the executor acts on and whose message says which AWS action
//! failed and what to do about it.

use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use drydock_provider::{ErrorKind, ProviderError};

/// A failed AWS call, before it is turned into a [`ProviderError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{action}: {message}{}", .code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
pub struct AwsError {
    /// The AWS action, as AWS names it (`CreateAutoScalingGroup`).
    pub action: &'static str,
    /// The AWS error code (`InvalidSubnetID.NotFound`), when the service answered with one.
    pub code: Option<String>,
    pub message: String,
    pub kind: ErrorKind,
}

impl AwsError {
    /// Whether AWS said the thing addressed does not exist.
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// The code, or "" when there was none.
    pub fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("")
    }

    /// The error for the executor and for people: the kind, the action, AWS's own words and
    /// what to do.
    pub fn into_provider(self) -> ProviderError {
        let hint = hint(self.kind, self.code(), self.action);
        let mut message = self.to_string();
        if !hint.is_empty() {
            message.push_str("; ");
            message.push_str(hint);
        }
        ProviderError::new(self.kind, message)
    }
}

/// What a person can do about an error of this kind.
fn hint(kind: ErrorKind, code: &str, action: &str) -> &'static str {
    match kind {
        ErrorKind::Auth if code.is_empty() => {
            "no AWS credentials were found: set AWS_PROFILE (or `profile` in the provider \"aws\" block), \
             AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
        }
        ErrorKind::Auth if code.contains("Expired") => "the credentials have expired: renew them (`aws sso login`)",
        ErrorKind::Auth => {
            "the credentials were refused or lack a permission: check the profile and that its policy allows \
             this action"
        }
        ErrorKind::Quota => {
            "an account limit was reached: ask for more in Service Quotas, or lower the node groups' sizes"
        }
        ErrorKind::Throttled => {
            "AWS throttled the calls even after retries with backoff: run again later or lower --parallelism"
        }
        ErrorKind::Unavailable if code.is_empty() => {
            "the AWS endpoint could not be reached: check the network, the region and any `endpoint` or \
             AWS_ENDPOINT_URL"
        }
        ErrorKind::Unavailable => "AWS is busy or failing: run again in a minute",
        ErrorKind::InvalidInput if code.starts_with("InvalidAMIID") => {
            "the image does not exist in this region or is not shared with this account: check `image` and the \
             provider's region"
        }
        ErrorKind::InvalidInput if code.starts_with("InvalidSubnet") => {
            "a subnet does not exist in this region or account: check the node group's subnets and the provider's \
             region"
        }
        ErrorKind::InvalidInput if code.starts_with("InvalidGroup") => {
            "a security group does not exist in the subnets' VPC: check `security_groups`"
        }
        ErrorKind::InvalidInput if action.contains("LaunchTemplate") => {
            "AWS refused the launch template: check the node group's image, instance types, root volume and \
             metadata settings"
        }
        _ => "",
    }
}

/// The kind an AWS error code (and HTTP status) falls under.
pub fn classify(code: &str, message: &str, status: Option<u16>) -> ErrorKind {
    let lower = message.to_ascii_lowercase();
    match code {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "TooManyRequestsException"
        | "SlowDown" => ErrorKind::Throttled,
        "AuthFailure"
        | "UnauthorizedOperation"
        | "AccessDenied"
        | "AccessDeniedException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "OptInRequired"
        | "UnrecognizedClientException"
        | "Blocked" => ErrorKind::Auth,
        "AlreadyExists" | "AlreadyExistsFault" | "InvalidLaunchTemplateName.AlreadyExistsException" => {
            ErrorKind::AlreadyExists
        }
        "ServiceUnavailable"
        | "Unavailable"
        | "InternalError"
        | "InternalFailure"
        | "ServiceLinkedRoleFailure"
        | "ResourceInUse"
        | "ScalingActivityInProgress"
        | "ResourceContention" => ErrorKind::Unavailable,
        "InvalidLaunchTemplateName.NotFoundException"
        | "InvalidLaunchTemplateId.NotFound"
        | "InvalidLaunchTemplateId.VersionNotFound"
        | "InvalidInstanceID.NotFound"
        // EKS: no cluster of that name.
        | "ResourceNotFoundException" => ErrorKind::NotFound,
        c if c.ends_with("LimitExceeded") || c.ends_with("QuotaExceeded") || c == "LimitExceededException" => {
            ErrorKind::Quota
        }
        // Auto Scaling says "not found" in the message of a ValidationError.
        "ValidationError" if lower.contains("not found") => ErrorKind::NotFound,
        "ValidationError" if lower.contains("limit") && lower.contains("exceed") => ErrorKind::Quota,
        c if c.starts_with("Invalid") || c.starts_with("Missing") || c == "ValidationError" => ErrorKind::InvalidInput,
        _ => match status {
            Some(429) => ErrorKind::Throttled,
            Some(401 | 403) => ErrorKind::Auth,
            Some(s) if s >= 500 => ErrorKind::Unavailable,
            Some(404) => ErrorKind::NotFound,
            _ => ErrorKind::Other,
        },
    }
}

/// Turns any SDK error into an [`AwsError`] for `action`.
pub fn from_sdk<E>(action: &'static str, err: SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let full = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().map(str::to_string);
            let kind = classify(code.as_deref().unwrap_or(""), ctx.err().message().unwrap_or(""), Some(status));
            let message = ctx.err().message().map(str::to_string).unwrap_or_else(|| match &code {
                Some(_) => full.clone(),
                None => "the service answered with an error and no error code".to_string(),
            });
            // The status stands in for a missing code, so the hint is about the service, not
            // about reaching it.
            let code = code.or_else(|| Some(format!("HTTP {status}")));
            AwsError { action, code, message, kind }
        }
        SdkError::TimeoutError(_) => {
            AwsError { action, code: None, message: "the call timed out".to_string(), kind: ErrorKind::Unavailable }
        }
        SdkError::ResponseError(ctx) => {
            let status = ctx.raw().status().as_u16();
            AwsError {
                action,
                code: None,
                message: format!("an unreadable answer (HTTP {status}): {full}"),
                kind: classify("", "", Some(status)),
            }
        }
        // No credentials surface here: the call was never sent.
        _ if is_credentials_error(&full) => {
            AwsError { action, code: None, message: "no credentials: ".to_string() + &full, kind: ErrorKind::Auth }
        }
        SdkError::DispatchFailure(_) => AwsError {
            action,
            code: None,
            message: format!("the request was not answered: {full}"),
            kind: ErrorKind::Unavailable,
        },
        _ => AwsError { action, code: None, message: full, kind: ErrorKind::Other },
    }
}

fn is_credentials_error(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("credentials") && (lower.contains("no credentials") || lower.contains("not loaded"))
        || lower.contains("credentialsnotloaded")
        || lower.contains("failed to load credentials")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        let k = |code: &str, message: &str| classify(code, message, Some(400));
        assert_eq!(k("Throttling", "Rate exceeded"), ErrorKind::Throttled);
        assert_eq!(k("RequestLimitExceeded", ""), ErrorKind::Throttled);
        assert_eq!(k("UnauthorizedOperation", ""), ErrorKind::Auth);
        assert_eq!(k("AuthFailure", ""), ErrorKind::Auth);
        assert_eq!(k("InvalidAMIID.NotFound", "The image id '[ami-1]' does not exist"), ErrorKind::InvalidInput);
        assert_eq!(k("InvalidSubnetID.NotFound", ""), ErrorKind::InvalidInput);
        assert_eq!(k("InstanceLimitExceeded", ""), ErrorKind::Quota);
        assert_eq!(k("VcpuLimitExceeded", ""), ErrorKind::Quota);
        assert_eq!(k("LimitExceeded", "AutoScalingGroup limit exceeded"), ErrorKind::Quota);
        assert_eq!(k("AlreadyExists", ""), ErrorKind::AlreadyExists);
        assert_eq!(k("ValidationError", "AutoScalingGroup name not found - null"), ErrorKind::NotFound);
        assert_eq!(k("ValidationError", "Max bound, 1, must be >= min bound, 2"), ErrorKind::InvalidInput);
        assert_eq!(k("InvalidLaunchTemplateName.NotFoundException", ""), ErrorKind::NotFound);
        assert_eq!(k("ScalingActivityInProgress", ""), ErrorKind::Unavailable);
        assert_eq!(k("ResourceNotFoundException", "No cluster found for name: x."), ErrorKind::NotFound);
        assert_eq!(classify("", "", Some(503)), ErrorKind::Unavailable);
        assert_eq!(classify("", "", Some(429)), ErrorKind::Throttled);
        assert_eq!(classify("Weird", "", Some(400)), ErrorKind::Other);
    }

    #[test]
    fn messages_name_the_action_the_code_and_what_to_do() {
        let e = AwsError {
            action: "CreateAutoScalingGroup",
            code: Some("InvalidSubnetID.NotFound".into()),
            message: "The subnet ID 'subnet-1' does not exist".into(),
            kind: ErrorKind::InvalidInput,
        };
        let p = e.into_provider().with_group("abc-prod-web-g1");
        assert_eq!(p.kind, ErrorKind::InvalidInput);
        let text = p.to_string();
        assert!(
            text.starts_with("invalid input: group abc-prod-web-g1: CreateAutoScalingGroup: The subnet ID"),
            "{text}"
        );
        assert!(text.contains("(InvalidSubnetID.NotFound); a subnet does not exist"), "{text}");
        let e =
            AwsError { action: "DescribeAutoScalingGroups", code: None, message: "no".into(), kind: ErrorKind::Auth };
        assert!(e.into_provider().message.contains("aws sso login"));
    }

    #[test]
    fn credentials_errors_are_recognised_by_their_text() {
        assert!(is_credentials_error("dispatch failure: other: no credentials in the property bag"));
        assert!(is_credentials_error("the credential provider was not enabled: CredentialsNotLoaded"));
        assert!(!is_credentials_error("connection refused"));
    }
}
