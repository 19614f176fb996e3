use oasis_kernel::RepoError;

/// What notify operations fail with. The HTTP shell maps each variant once.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A query parameter is invalid (HTTP 400 with `{field: [message]}`).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// No such notification of the caller's (HTTP 404: another user's is not revealed).
    #[error("Not found.")]
    NotFound,
    /// Storage failed (HTTP 500/503 via `RepoError`).
    #[error(transparent)]
    Repo(#[from] RepoError),
}
