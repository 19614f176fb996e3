use oasis_kernel::{FieldErrors, RepoError};

/// What commission operations fail with; each variant's doc says its HTTP status (mapped once,
/// in the shell).
#[derive(Debug, thiserror::Error)]
pub enum CommissionError {
    /// 400 with `{field: [message]}`.
    #[error("invalid: {0:?}")]
    Invalid(FieldErrors),
    /// 404: no such offering or request, or not one the caller may see.
    #[error("not found")]
    NotFound,
    /// 403: only creators make offerings.
    #[error("only creators can offer commissions")]
    NotCreator,
    /// 403: the caller is a party of the request (or may see the offering) but this is the
    /// other party's (or the owner's) move.
    #[error("{0}")]
    Forbidden(String),
    /// 409 with a code and the reason (the state does not allow it).
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    /// 500/503.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl CommissionError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(FieldErrors::single(field, message))
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }
}

impl From<FieldErrors> for CommissionError {
    fn from(e: FieldErrors) -> Self {
        Self::Invalid(e)
    }
}
