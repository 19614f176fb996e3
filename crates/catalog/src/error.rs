use oasis_kernel::{FieldErrors, RepoError};

/// Everything a catalog operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// 400: invalid input, `{"field": ["message"]}`.
    #[error("invalid input: {0}")]
    Invalid(FieldErrors),
    /// 404: the tier/post/like/comment/media does not exist (or is not the caller's to see).
    #[error("not found")]
    NotFound,
    /// 403: the caller may see the object but does not own it.
    #[error("not the owner")]
    NotOwner,
    /// 403: the post is gated by tiers the viewer holds no access to.
    #[error("post is locked")]
    Locked,
    /// 409: a tier with paying members cannot be deleted (deactivate it instead).
    #[error("tier has {0} paying members")]
    TierHasMembers(i64),
    /// 409: a tier that gates posts cannot be deleted (deleting it would make them public).
    #[error("tier gates {0} posts")]
    TierInUse(i64),
    /// 500/503: storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<FieldErrors> for CatalogError {
    fn from(e: FieldErrors) -> Self {
        CatalogError::Invalid(e)
    }
}

impl CatalogError {
    pub fn field(field: &str, msg: impl Into<String>) -> Self {
        CatalogError::Invalid(FieldErrors::single(field, msg))
    }
}
