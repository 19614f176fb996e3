use diesel::result::{DatabaseErrorKind, Error as DieselError};
use oasis_kernel::RepoError;

/// Maps a Diesel error to the domain-neutral [`RepoError`]: missing rows become `NotFound`,
/// unique/foreign-key/check violations become `Conflict` carrying the constraint name (so callers
/// can turn them into field errors), everything else `Unavailable`.
pub fn repo_error(e: DieselError) -> RepoError {
    match e {
        DieselError::NotFound => RepoError::NotFound,
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UniqueViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::CheckViolation
            | DatabaseErrorKind::NotNullViolation => RepoError::Conflict {
                constraint: info.constraint_name().unwrap_or("unknown").to_owned(),
            },
            _ => RepoError::Unavailable(info.message().to_owned()),
        },
        other => RepoError::Unavailable(other.to_string()),
    }
}
