use oasis_kernel::{FieldErrors, RepoError};

/// Everything the identity domain can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// 400 with a field map (`{"field": ["message"]}`).
    #[error("invalid input: {0}")]
    Invalid(FieldErrors),
    /// 400 `{"non_field_errors": ["Unable to log in with provided credentials."]}` (401 on the JWT endpoint).
    #[error("unable to log in with provided credentials")]
    BadCredentials,
    /// 400 `{"non_field_errors": ["E-mail is not verified."]}`.
    #[error("e-mail is not verified")]
    EmailNotVerified,
    /// 429 with `Retry-After`.
    #[error("too many failed logins; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// 401 `token_not_valid`.
    #[error("token is invalid or expired")]
    TokenInvalid,
    /// 404.
    #[error("not found")]
    NotFound,
    /// 400: the identity provider refused or sent something unusable (message is shown).
    #[error("{0}")]
    Social(String),
    /// 502: the identity provider could not be reached or answered nonsense.
    #[error("identity provider unavailable: {0}")]
    ProviderUnavailable(String),
    /// 503/500: storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<FieldErrors> for IdentityError {
    fn from(e: FieldErrors) -> Self {
        IdentityError::Invalid(e)
    }
}

impl IdentityError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        IdentityError::Invalid(FieldErrors::single(field, message))
    }
}
