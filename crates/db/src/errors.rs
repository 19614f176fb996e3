use diesel::result::{DatabaseErrorKind, Error as DieselError};
use oasis_kernel::RepoError;

/// Maps a Diesel error to the domain-neutral [`RepoError`]: missing rows become `NotFound`,
/// unique/foreign-key/check violations become `Conflict` carrying the constraint name (so callers
/// can turn them into field errors), a lost or refused connection and a cancelled statement
/// (statement timeout, shutdown) `Unreachable` (try again: HTTP 503), everything else
/// `Unavailable`.
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
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                crate::pool::mark_connections_suspect();
                RepoError::Unreachable(info.message().to_owned())
            }
            _ if is_transient(info.message()) => {
                if !info.message().starts_with("canceling statement") {
                    crate::pool::mark_connections_suspect();
                }
                RepoError::Unreachable(info.message().to_owned())
            }
            _ => RepoError::Unavailable(info.message().to_owned()),
        },
        // A transaction whose connection died cannot be rolled back.
        DieselError::BrokenTransactionManager => {
            crate::pool::mark_connections_suspect();
            RepoError::Unreachable(e.to_string())
        }
        other => RepoError::Unavailable(other.to_string()),
    }
}

/// PostgreSQL's messages for a statement it gave up on or a server going away (Diesel does not
/// expose the SQLSTATE): 57014 query_canceled (statement or lock timeout), 57P01
/// admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 53300 too_many_connections.
fn is_transient(message: &str) -> bool {
    message.starts_with("canceling statement due to")
        || message.starts_with("terminating connection due to")
        || message.starts_with("the database system is")
        || message.contains("too many clients already")
        || message.contains("server closed the connection unexpectedly")
        || message.starts_with("no connection to the server")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_lost_connections_are_unreachable_not_failures() {
        for m in [
            "canceling statement due to statement timeout",
            "canceling statement due to lock timeout",
            "terminating connection due to administrator command",
            "the database system is shutting down",
            "the database system is starting up",
            "sorry, too many clients already",
        ] {
            let e = repo_error(DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new(m.to_owned()),
            ));
            assert!(matches!(e, RepoError::Unreachable(_)), "{m}: {e:?}");
        }
        let e = repo_error(DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("whatever".to_owned()),
        ));
        assert!(matches!(e, RepoError::Unreachable(_)));
        let e = repo_error(DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("division by zero".to_owned()),
        ));
        assert!(matches!(e, RepoError::Unavailable(_)));
    }
}
