use oasis_kernel::RepoError;

/// What social operations fail with. The HTTP shell maps each variant once.
#[derive(Debug, thiserror::Error)]
pub enum SocialError {
    /// You cannot follow yourself (HTTP 400).
    #[error("You cannot follow yourself.")]
    CannotFollowSelf,
    /// The target user is not a creator (HTTP 400).
    #[error("Only creators can be followed.")]
    NotACreator,
    /// No such (active) user (HTTP 404).
    #[error("User not found.")]
    UserNotFound,
    /// A query parameter is invalid (HTTP 400 with `{field: [message]}`).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Storage failed (HTTP 500/503 via `RepoError`).
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl SocialError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}
